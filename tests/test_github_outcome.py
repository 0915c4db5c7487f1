"""The apply-outcome comment."""

from __future__ import annotations

from provisioner.forge.comment import RunInfo
from provisioner.forge.outcome import (
    APPLY_MARKER,
    AppOutcome,
    apply_marker,
    render_apply_outcome,
)

RUN = RunInfo("https://github.com/octo/bots/actions/runs/43", "b" * 40)


def test_outcome_per_app() -> None:
    outcomes = [
        AppOutcome("prod", {"applied": 3, "failed": 0, "not_attempted": 0}),
        AppOutcome("quiet"),
        AppOutcome("staging", {"applied": 1, "failed": 1, "not_attempted": 2}, message="HTTP 500"),
        AppOutcome("eu", {"applied": 0, "failed": 1}, message="code 1004: bad\nsignature | x"),
        AppOutcome(
            "us",
            refused="its plan id differs from the reviewed one: the state moved (serial 4 → 5)",
        ),
    ]
    assert render_apply_outcome(outcomes, RUN) == (
        f"""{APPLY_MARKER}
## provisioner apply: 2 of 5 apps done, 3 need attention

| App | Result | Applied | Failed | Not attempted | Why |
|---|---|---|---|---|---|
| `prod` | ✅ applied | 3 | 0 | 0 |  |
| `quiet` | ✅ nothing to do | 0 | 0 | 0 |  |
| `staging` | ⚠️ partly applied | 1 | 1 | 2 | HTTP 500 |
| `eu` | ❌ failed | 0 | 1 | 0 | code 1004: bad signature \\| x |
| `us` | ⛔ refused | 0 | 0 | 0 | its plan id differs from the reviewed one: the state moved \
(serial 4 → 5) |

---
Merge commit `bbbbbbbbbbbb` · [workflow run](https://github.com/octo/bots/actions/runs/43) · \
the state records exactly what was applied
"""
    )


def test_outcome_is_cut_to_the_limit() -> None:
    outcomes = [AppOutcome(f"app-{index:04d}", refused="x" * 200) for index in range(500)]
    body = render_apply_outcome(outcomes, RUN, limit=10_000)
    assert len(body) <= 10_000
    assert "the full outcome is in the job summary" in body
    assert body.endswith("the state records exactly what was applied\n")


def test_each_shard_of_a_sharded_apply_keeps_its_own_comment() -> None:
    body = render_apply_outcome([AppOutcome("prod", {"applied": 1})], RUN, shard=(2, 4))
    assert body.splitlines()[:2] == [
        "<!-- provisioner:apply shard=2/4 -->",
        "## provisioner apply (shard 2 of 4): 1 of 1 apps done",
    ]
    assert apply_marker((2, 4)) not in render_apply_outcome([], RUN, shard=(1, 4))
    assert APPLY_MARKER not in body and apply_marker(None) == APPLY_MARKER


def test_no_reason_can_write_a_marker_or_markup() -> None:
    hostile = "<!-- provisioner:plan --> <b>x</b> & | y"
    body = render_apply_outcome([AppOutcome("eu", refused=hostile)], RUN)
    assert body.count("<!--") == 1 and "-->" not in body.split("\n", 1)[1]
    assert "| \\u003c!-- provisioner:plan --\\u003e &lt;b>x&lt;/b> &amp; \\| y |" in body
