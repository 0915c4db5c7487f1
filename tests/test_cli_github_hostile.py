"""Hostile pull-request text through `provisioner github plan|apply` end to end (the World of
tests/github_world.py: runner-shaped environments, the GitHub fake, the emulator, real
git): a bot name holding a marker, line separators in metadata, and what validation refuses.

A marker counts only as the exact first line of a comment by the workflow's identity, no
value can write ``<!--`` or ``-->``, and the hidden data block stays the body's last line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.forge.comment import parse_plan_data
from provisioner.forge.outcome import APPLY_MARKER
from provisioner.render.markdown import MARKDOWN_MARKER
from tests.apply_support import write_calls
from tests.github_fake import REPO_NAME, WORKFLOW_LOGIN
from tests.github_world import MERGE, World, merged_and_applied, open_pull

PLAN_MARKER = MARKDOWN_MARKER


def ours(world: World, number: int) -> list[str]:
    return [c["body"] for c in world.comments(number) if c["user"]["login"] == WORKFLOW_LOGIN]


def set_metadata(world: World, user_id: str, metadata: str) -> None:
    """Replace the bot's ``metadata:`` line in both clones (YAML flow mapping ``metadata``)."""
    for workspace in (world.pr, world.main):
        path: Path = workspace.root / "bots" / "demo" / f"{user_id}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace('metadata: {version: "1"}\n', f"metadata: {metadata}\n"), encoding="utf-8"
        )


@pytest.mark.parametrize("marker", [APPLY_MARKER, PLAN_MARKER])
def test_a_bot_name_holding_a_marker_never_turns_one_comment_into_another(
    world: World, marker: str
) -> None:
    world.both("bot", "helper-bot", name=f'"{marker}"')
    number = open_pull(world)
    planned = world.plan(number)
    assert planned.code == 0, planned.log
    (reviewed,) = ours(world, number)
    assert reviewed.startswith(f"{PLAN_MARKER}\n")
    assert reviewed.count("<!--") == 2 and reviewed.count("-->") == 2  # marker and data block
    escaped = marker.replace("<", "\\u003c").replace("-->", "--\\u003e")
    assert f'name: "{escaped}"' in reviewed  # the name, shown, as text that opens no comment

    world.github.merge_pull(REPO_NAME, number, MERGE)
    applied = world.apply()
    assert applied.code == 0, applied.log
    plan_comment, outcome = ours(world, number)
    assert plan_comment == reviewed  # the reviewed comment is never overwritten
    assert outcome.startswith(f"{APPLY_MARKER}\n## provisioner apply: 1 of 1 apps done\n")
    assert "| `demo` | ✅ applied | 2 | 0 | 0 |  |" in outcome
    assert world.state().bots["helper-bot"].spec["name"] == marker

    again = world.apply()  # a re-run still finds the reviewed plan and edits the outcome
    assert again.code == 0, again.log
    plan_comment, rerun = ours(world, number)
    assert plan_comment == reviewed and "| `demo` | ✅ nothing to do | 0 | 0 | 0 |  |" in rerun
    assert write_calls(world.server) == 2


def test_line_separators_in_a_metadata_value_keep_the_data_block_and_the_merge_applies(
    world: World,
) -> None:
    merged_and_applied(world)
    value = "a\u2028b\u2029c\u0085d\u000be\u000cf\rg"
    set_metadata(world, "helper-bot", r'{version: "1", note: "a\u2028b\u2029c\u0085d\ve\ff\rg"}')
    number = open_pull(world, "4" * 40)
    planned = world.plan(number, head="4" * 40)
    assert planned.code == 0, planned.log
    (reviewed,) = ours(world, number)
    data = parse_plan_data(reviewed)
    assert reviewed.splitlines()[-1].startswith("<!-- provisioner:plan-data ")
    assert [(c.action, c.user_id, c.fields) for c in data.apps[0].changes] == [
        ("update", "helper-bot", ("metadata.note",))
    ]

    world.github.merge_pull(REPO_NAME, number, "5" * 40)
    applied = world.apply(sha="5" * 40)
    assert applied.code == 0, applied.log
    assert world.state().bots["helper-bot"].spec["metadata"] == {"version": "1", "note": value}
    assert "| `demo` | ✅ applied | 1 | 0 | 0 |  |" in ours(world, number)[1]


@pytest.mark.parametrize(
    ("key", "written", "named"),
    [
        ("line\u2028sep", r"line\u2028sep", "U+2028 (LINE SEPARATOR) at character 5"),
        ("next\u0085line", r"next\u0085line", "U+0085 (NEXT LINE) at character 5"),
    ],
)
def test_a_metadata_key_holding_a_line_separator_is_refused_by_validation(
    world: World, key: str, written: str, named: str
) -> None:
    set_metadata(world, "helper-bot", f'{{"{written}": "1"}}')
    number = open_pull(world)
    planned = world.plan(number)
    assert planned.code == 1
    shown = key.replace("\u2028", "\\u2028").replace("\u0085", "\\u0085")
    message = (
        f"metadata: key '{shown}' holds {named}; a key must be one line of printable text"
        "%0Ahint: delete it: such characters are invisible and usually come in with pasted text"
    )
    assert (
        "::error file=bots/demo/helper-bot.yaml,line=5,col=12,title=control-character::" + message
        in planned.out
    )
    (comment,) = ours(world, number)
    assert "**Could not plan (see the job log):**" in comment
    assert parse_plan_data(comment).apps == ()
