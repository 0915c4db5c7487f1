"""connect.py: an app's API client, its credentials and retry backoff from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.connect import connect, missing_credentials, retry_backoff
from provisioner.errors import ConfigError
from provisioner.workspace import load_apps
from tests.test_workspace import ENV, write_app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
