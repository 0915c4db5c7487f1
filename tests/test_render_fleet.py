"""render/fleet.py and the outputs that summarise beyond MANY_APPS apps: the text plan and the
drift report, the markdown job summary, and the shard result files."""

from __future__ import annotations

from typing import Any, cast

from provisioner.forge.shards import merge_shard_results, shard_result_json
from provisioner.github.actions import SUMMARY_LIMIT
from provisioner.models import MANY_APPS
from provisioner.plan import PlanDoc
from provisioner.render.drift import render_drift_text
from provisioner.render.fleet import plan_text
from provisioner.render.markdown import render_markdown
from provisioner.render.plan import render_text
from provisioner.state.drift_record import DriftRecord
from tests.github_support import deleting_doc, unchanged_doc


def fleet(size: int, changing: tuple[int, ...]) -> list[PlanDoc]:
    docs: list[dict[str, Any]] = [
        deleting_doc(f"app-{n:04d}") if n in changing else unchanged_doc(f"app-{n:04d}")
        for n in range(size)
    ]
    return cast(list[PlanDoc], docs)


def test_up_to_many_apps_the_text_plan_is_every_app_s_block() -> None:
    docs = fleet(MANY_APPS, (3,))
    assert plan_text(docs) == render_text(docs)


def test_beyond_many_apps_the_text_plan_leads_with_a_table() -> None:
    docs = fleet(MANY_APPS + 5, (3, 17))
    text = plan_text(docs)
    lines = text.splitlines()
    assert lines[0] == "Plan for 25 apps: 2 to delete, 2 to update; 2 to show, 23 unchanged"
    assert lines[2] == (
        "  app         replace     delete     create      adopt     update      drift  unmanaged"
    )
    assert lines[3].split() == ["app-0003", "0", "1", "0", "0", "1", "0", "0"]
    assert lines[6].startswith("Unchanged (23): app-0000, app-0001, app-0002, app-0004, ")
    assert "app-0003" not in lines[6]
    assert text.count("Plan for app ") == 2
    assert "Plan id: " + docs[0]["id"] not in text  # the unchanged apps have no block


def test_beyond_many_apps_the_drift_report_leads_with_a_table() -> None:
    docs = fleet(MANY_APPS + 1, (0,))
    lines = render_drift_text(docs).splitlines()
    assert lines[0] == "Drift of 21 apps: 1 to delete, 1 to update; 1 to show, 20 clean"
    assert lines[5].startswith("Clean (20): app-0001, ")
    assert lines[7] == "app-0000: 2 pending"


def test_the_summary_of_a_thousand_apps_shows_the_changing_ones_first_and_fits() -> None:
    docs = fleet(1000, (998,))
    text = render_markdown(docs, limit=SUMMARY_LIMIT // 2)
    assert len(text.encode()) < 20_000
    assert text.index("### Plan for `app-0998`") < text.index("No changes: `app-0000`")
    assert "### Plan for `app-0000`" not in text


def test_a_shard_result_carries_an_unchanged_app_in_under_two_kilobytes() -> None:
    docs = fleet(300, ())
    seen: dict[str, DriftRecord | None] = {doc["app"]: None for doc in docs}
    text = shard_result_json(docs, (), "a" * 40, seen)
    assert len(text.encode()) / 300 <= 2048
    merged = merge_shard_results({"shard-1.json": text})
    assert [doc["app"] for doc in merged.plans] == [doc["app"] for doc in docs]
