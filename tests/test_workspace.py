"""Pipeline glue: app folders, loading with diagnostics, credentials, connect, plan_app,
plan files, and the round trip create -> record -> plan = no changes on the real emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.canonical import api_payload, canonical_spec
from provisioner.errors import ConfigError, ManifestError, PlanError
from provisioner.rongcloud.models import BotPayload
from provisioner.state import RecordedBot, backend_for
from provisioner.workspace import (
    connect,
    load_apps,
    missing_credentials,
    plan_app,
    plans_document,
    read_plan_file,
    resolve_app_folders,
    retry_backoff,
)

ENV = {"DIFY_ASSISTANT_KEY": "app-demo-key"}

BOT = """\
userId: assistant-bot
name: 消息助手
type: Message AI
profileUrl: https://example.com/robot.png
metadata: {version: "1"}
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
    objectNames: [RC:TxtMsg]
    events: ["message:private"]
  - type: dify_chatflow
    callbackUrl: https://api.dify.ai/v1
    auth: {apiKey: "${DIFY_ASSISTANT_KEY}"}
"""


def write_app(root: Path, name: str = "demo", app_yaml: str = "endpoint: local\n") -> Path:
    folder = root / "bots" / name
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text(app_yaml, encoding="utf-8")
    (folder / "assistant.yaml").write_text(BOT, encoding="utf-8")
    return folder


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_resolve_app_folders_by_name_path_or_all(workdir: Path) -> None:
    write_app(workdir, "demo")
    write_app(workdir, "staging")
    bots = Path("bots")
    assert resolve_app_folders(["demo"], bots) == [bots / "demo"]
    assert resolve_app_folders(["bots/staging"], bots) == [Path("bots/staging")]
    assert [p.name for p in resolve_app_folders([], bots)] == ["demo", "staging"]
    with pytest.raises(ConfigError) as caught:
        resolve_app_folders(["prod"], bots)
    assert caught.value.message == "no app 'prod': neither bots/prod nor prod is a folder"
    assert caught.value.hint == "give an app name under bots/ or the path to an app folder"


def test_no_bots_dir_is_a_config_error(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_app_folders([], Path("bots"))
    assert caught.value.message == "no bots directory bots"


def test_load_apps_gives_desired_apps(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    assert app.name == "demo" and [bot.userId for bot in app.bots] == ["assistant-bot"]


def test_load_apps_names_every_unset_secret_with_how_to_set_it(workdir: Path) -> None:
    write_app(workdir)
    with pytest.raises(ManifestError) as caught:
        load_apps(["demo"], Path("bots"), env={})
    assert caught.value.message == (
        "the manifests have 1 error:\n"
        "  bots/demo/assistant.yaml:13:20: integrations[1].auth.apiKey: environment variable"
        " DIFY_ASSISTANT_KEY is not set"
    )
    assert caught.value.hint == (
        "the plan fingerprints every referenced secret: export DIFY_ASSISTANT_KEY=... (in CI,"
        " pass them as secrets), then run again"
    )


def test_unset_credentials_do_not_fail_loading(workdir: Path) -> None:
    write_app(
        workdir,
        app_yaml="endpoint: sg\nappKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n",
    )
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    assert missing_credentials(app, ENV) == ["RC_KEY", "RC_SECRET"]
    assert missing_credentials(app, {**ENV, "RC_KEY": "k", "RC_SECRET": "s"}) == []
    with pytest.raises(ConfigError) as caught, connect(app, ENV):
        pass  # pragma: no cover - never entered
    assert caught.value.message == ("no credentials to refresh from the API: RC_KEY, RC_SECRET")
    assert caught.value.hint == (
        "export RC_KEY=... RC_SECRET=..., or pass --no-refresh to plan from the recorded state only"
    )


def test_invalid_manifest_lists_file_line_col(workdir: Path) -> None:
    folder = write_app(workdir)
    (folder / "broken.yaml").write_text("userId: x\nname: no\n", encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_apps(["demo"], Path("bots"), env=ENV)
    assert caught.value.message.startswith("the manifests have ")
    assert "  bots/demo/broken.yaml:2:7: name: " in caught.value.message


class FakeClient:
    """Just enough of RongCloudClient for plan_app."""

    def __init__(self, bots: list[BotPayload]) -> None:
        self.bots = bots
        self.calls = 0

    def query_bots(self) -> list[BotPayload]:
        self.calls += 1
        return self.bots


def test_plan_app_offline_and_with_refresh(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    offline = plan_app(app, ENV, refresh=False, allow_empty=False, client=None)
    assert [c.action for c in offline.changes] == ["create"]
    client = FakeClient([api_payload(app.bots[0], ENV), BotPayload(userId="manual")])
    refreshed = plan_app(app, ENV, refresh=True, allow_empty=False, client=client)  # type: ignore[arg-type]
    assert [c.action for c in refreshed.changes] == ["adopt"]
    assert refreshed.unmanaged == ("manual",) and client.calls == 1
    with pytest.raises(ConfigError):
        plan_app(app, ENV, refresh=True, allow_empty=False, client=None)


def test_round_trip_on_the_emulator_plans_to_nothing(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    backend = backend_for(app)
    with connect(app, ENV) as client:
        plan = plan_app(app, ENV, refresh=True, allow_empty=False, client=client)
        assert [c.action for c in plan.changes] == ["create"]
        state = backend.read()
        for bot in app.bots:
            client.create_bot(api_payload(bot, ENV))
            spec = canonical_spec(bot, ENV, state.salt)
            state = state.with_bot(bot.userId, RecordedBot(spec))
        backend.write(state, expected_serial=0)
        again = plan_app(app, ENV, refresh=True, allow_empty=False, client=client)
    assert again.is_empty and again.drift == () and again.unmanaged == ()
    assert (workdir / ".provisioner" / "state" / "demo.json").is_file()


def test_plan_file_round_trip_and_errors(tmp_path: Path, workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    plan = plan_app(app, ENV, refresh=False, allow_empty=False, client=None)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plans_document([plan])), encoding="utf-8")
    assert read_plan_file(path) == {"demo": plan.id}
    with pytest.raises(PlanError, match="no plan file"):
        read_plan_file(tmp_path / "missing.json")
    path.write_text("{", encoding="utf-8")
    with pytest.raises(PlanError, match="not a plan file"):
        read_plan_file(path)
    path.write_text('{"format_version": 9, "plans": []}', encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        read_plan_file(path)
    assert caught.value.message == f"{path}: not a plan file of format_version 1"


def test_manifest_error_sorts_diagnostics_that_differ_only_in_their_hint() -> None:
    """Sorting compares file, line, column, path, code, message: never a hint (None vs str)."""
    from provisioner.diagnostics import Diagnostic
    from provisioner.workspace import _manifest_error

    def diagnostic(line: int, hint: str | None) -> Diagnostic:
        return Diagnostic("bots/a/x.yaml", line, 1, "name", "type", "error", "bad name", hint)

    error = _manifest_error([diagnostic(3, None), diagnostic(2, "fix it"), diagnostic(2, None)])
    assert error.message == (
        "the manifests have 3 errors:\n"
        "  bots/a/x.yaml:2:1: name: bad name\n"
        "  bots/a/x.yaml:2:1: name: bad name\n"
        "  bots/a/x.yaml:3:1: name: bad name"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0.5), ("", 0.5), ("0", 0.0), ("0.01", 0.01), (" 2 ", 2.0)]
)
def test_retry_backoff_comes_from_the_environment(value: str | None, expected: float) -> None:
    env = {} if value is None else {"PROVISIONER_RETRY_BACKOFF": value}
    assert retry_backoff(env) == expected


@pytest.mark.parametrize("value", ["fast", "-1", "61", "nan", "inf"])
def test_retry_backoff_that_is_not_a_number_of_seconds_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        retry_backoff({"PROVISIONER_RETRY_BACKOFF": value})
    assert caught.value.message == (
        "environment variable PROVISIONER_RETRY_BACKOFF must be a number of seconds from 0 to"
        f" 60, got {value!r}"
    )
    assert caught.value.hint == "unset it to use the default 0.5 s, or give e.g. 0.05"


def test_connect_gives_the_client_the_retry_backoff(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provisioner.rongcloud

    given: list[float] = []
    real = provisioner.rongcloud.RongCloudClient

    def recording(**kwargs: Any) -> Any:
        given.append(kwargs["backoff_base"])
        return real(**kwargs)

    monkeypatch.setattr(provisioner.rongcloud, "RongCloudClient", recording)
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    with connect(app, {**ENV, "PROVISIONER_RETRY_BACKOFF": "0.02"}) as client:
        assert client.query_bots() == []
    with connect(app, ENV):
        pass
    assert given == [0.02, 0.5]
    with pytest.raises(ConfigError), connect(app, {"PROVISIONER_RETRY_BACKOFF": "x"}):
        pass


def test_cli_reports_a_bad_retry_backoff_before_calling_the_api(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from provisioner.cli import main

    write_app(workdir)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROVISIONER_RETRY_BACKOFF", "fast")
    assert main(["plan"]) == 1
    assert capsys.readouterr().err == (
        "error: app demo: environment variable PROVISIONER_RETRY_BACKOFF must be a number of"
        " seconds from 0 to 60, got 'fast'\n"
        "  hint: unset it to use the default 0.5 s, or give e.g. 0.05\n"
    )
    assert not (workdir / ".provisioner" / "emulator").exists()  # no emulator was started
