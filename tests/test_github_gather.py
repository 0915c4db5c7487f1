"""github/gather.py: the plans of a `github plan|drift` run, planned here or merged from the
shard results, with the apps that could not be planned. Nothing is printed (the CLI's
output is pinned in test_cli_github.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply.session import Planned
from provisioner.emulator import EmulatorServer
from provisioner.errors import ConfigError, ManifestError
from provisioner.github.comment import AppFailure
from provisioner.github.gather import Gathered, failures_of, gather, merged_results
from provisioner.github.shards import shard_result_json
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
