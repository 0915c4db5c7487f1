"""github/gather.py: the plans of a `github plan|drift` run, planned here or merged from the
shard results, with the apps that could not be planned. Nothing is printed (the CLI's
output is pinned in test_cli_github.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply.session import Planned
from provisioner.emulator import EmulatorServer
from provisioner.errors import ConfigError, ManifestError
from provisioner.forge.comment import AppFailure
from provisioner.forge.gather import (
    Gathered,
    failures_of,
    gather,
    merged_results,
    read_drift_records,
    write_drift_records,
)
from provisioner.forge.shards import shard_result_json
from provisioner.state.drift_record import DriftRecord, dumps_drift_record
from provisioner.workspace import LoadedApp, load_each
from tests.apply_support import ENV, enter_workspace
from tests.github_support import deleting_doc, unchanged_doc
from tests.test_plan import make_app


def test_failures_are_the_apps_not_loaded_then_the_apps_not_planned() -> None:
    loaded = [
        LoadedApp("fine", make_app(name="fine"), None),
        LoadedApp("broken", None, ManifestError("the manifests have 1 error", hint="fix it")),
    ]
    planned = [Planned(make_app(name="fine"), error=ConfigError("no credentials"))]
    assert failures_of(loaded, planned) == [
        AppFailure("broken", "the manifests have 1 error", "fix it"),
        AppFailure("fine", "no credentials", None),
    ]


def test_gather_plans_every_loaded_app_without_a_lock_and_prints_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = enter_workspace(tmp_path, server.url, monkeypatch, {})
    ws.bot("helper-bot")
    ws.app("second", key_var="SECOND_KEY", secret_var="SECOND_SECRET")
    ws.bot("solo-bot", app="second")
    loaded = load_each(["demo", "second"], ws.root / "bots", env=ENV, require_secrets=False)
    gathered = gather(loaded, ENV, refresh=True, allow_empty=False, concurrency=2)
    assert gathered.loaded == loaded
    assert [(doc["app"], len(doc["changes"])) for doc in gathered.docs] == [("demo", 1)]
    assert gathered.failures == [
        AppFailure(
            "second",
            "no credentials to refresh from the API: SECOND_KEY, SECOND_SECRET",
            "export SECOND_KEY=... SECOND_SECRET=... (in CI: the PROVISIONER_SECRETS bundle),"
            " or pass --no-refresh to plan from the"
            " recorded state only",
        )
    ]
    assert gathered.head_sha is None
    assert capsys.readouterr() == ("", "")


def test_merged_results_are_the_shards_plans_failures_and_commit(tmp_path: Path) -> None:
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    first.write_text(shard_result_json([unchanged_doc("quiet")], [], "a" * 40), "utf-8")
    second.write_text(
        shard_result_json([deleting_doc("prod")], [AppFailure("eu", "boom")], "a" * 40), "utf-8"
    )
    merged = merged_results([first, second])
    assert [doc["app"] for doc in merged.docs] == ["prod", "quiet"]
    assert (merged.loaded, merged.failures, merged.head_sha) == (
        (),
        [AppFailure("eu", "boom")],
        "a" * 40,
    )


def test_a_shard_result_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError) as caught:
        merged_results([missing])
    assert caught.value.message == (
        f"cannot read the shard result {missing}: No such file or directory"
    )
    assert caught.value.hint == "pass the files the shard jobs wrote with --results-out"


def test_shard_results_of_another_commit_are_refused() -> None:
    Gathered((), [], [], None).check_head("b" * 40)
    Gathered((), [], [], "b" * 40).check_head("b" * 40)
    with pytest.raises(ConfigError) as caught:
        Gathered((), [], [], "a" * 40).check_head("b" * 40)
    assert caught.value.message == (
        "the shard results are for commit aaaaaaaaaaaa, this run is for bbbbbbbbbbbb"
    )
    assert caught.value.hint == "merge only the results of this run's shard jobs"


def test_a_drift_run_records_what_it_saw_and_a_plan_reads_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer
) -> None:
    ws = enter_workspace(tmp_path, server.url, monkeypatch, {})
    ws.bot("helper-bot")
    ws.app("second", key_var="SECOND_KEY", secret_var="SECOND_SECRET")
    loaded = load_each(["demo", "second"], ws.root / "bots", env=ENV, require_secrets=False)
    refreshed = gather(loaded, ENV, refresh=True, allow_empty=True, concurrency=2)
    at = "2026-12-07T03:00:12Z"
    warnings = write_drift_records(refreshed, ENV, at=at, run=None, concurrency=4)
    assert warnings == []  # "second" could not be checked: nothing to record
    recorded = tmp_path / ".provisioner" / "state" / "drift" / "demo.json"
    expected = DriftRecord("demo", at, None, {}, None, 0)  # helper-bot: neither recorded nor live
    assert recorded.read_text("utf-8") == dumps_drift_record(expected)
    assert not (tmp_path / ".provisioner" / "state" / "drift" / "second.json").exists()
    planned = gather(loaded, ENV, refresh=False, allow_empty=True, concurrency=2)
    with_seen, unread = read_drift_records(planned, ENV)
    assert (with_seen.seen, unread) == ({"demo": expected, "second": None}, [])
    merged = Gathered((), [], [], None, {"eu": None})
    assert read_drift_records(merged, ENV) == (merged, [])  # shard results carry their own


def test_records_that_cannot_be_written_or_read_are_warnings_naming_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer
) -> None:
    ws = enter_workspace(tmp_path, server.url, monkeypatch, {})
    ws.bot("helper-bot")
    loaded = load_each(["demo"], ws.root / "bots", env=ENV, require_secrets=False)
    refreshed = gather(loaded, ENV, refresh=True, allow_empty=True, concurrency=1)
    drift_dir = tmp_path / ".provisioner" / "state" / "drift"
    drift_dir.parent.mkdir(parents=True)
    drift_dir.write_text("in the way", "utf-8")
    at = "2026-12-07T03:00:12Z"
    assert write_drift_records(refreshed, ENV, at=at, run=None, concurrency=1) == [
        "app demo: what this drift run saw was not recorded:"
        f" {drift_dir / 'demo.json'}: cannot write the drift record: File exists (check the"
        " directory is writable; the state is not affected)"
    ]
    drift_dir.unlink()
    drift_dir.mkdir()
    (drift_dir / "demo.json").write_text('{"version": 1}', "utf-8")
    _, warnings = read_drift_records(refreshed, ENV)
    assert warnings == [
        "app demo: what the last drift run saw is not shown:"
        f" {drift_dir / 'demo.json'}: drift record is damaged: 'app' must be a string of 1 to 256"
        " characters (the next drift run writes it again; until then pull-request plans do not"
        " show what it saw)"
    ]
