"""connect.py: an app's API client, its credentials and retry backoff from the environment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from provisioner import connect as connect_module
from provisioner.cli import main
from provisioner.connect import (
    LOCAL_CREDENTIALS,
    Credentials,
    connect,
    credentials,
    is_local,
    missing_credentials,
    retry_backoff,
)
from provisioner.errors import ConfigError
from provisioner.rongcloud import RongCloudClient
from provisioner.workspace import load_apps, load_settings
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
        "export RC_KEY=... RC_SECRET=... (in CI: the PROVISIONER_SECRETS bundle),"
        " or pass --no-refresh to plan from the recorded state only"
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
    given: list[float] = []
    real = RongCloudClient

    def recording(**kwargs: Any) -> Any:
        given.append(kwargs["backoff_base"])
        return real(**kwargs)

    monkeypatch.setattr(connect_module, "RongCloudClient", recording)
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


# --- the one credentials resolver and the one "is local" rule -------------------------------

REFERENCED = "endpoint: ${RC_ENDPOINT}\nappKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n"


def no_credentials(names: Sequence[str]) -> ConfigError:
    return ConfigError(f"cannot do it without {', '.join(names)}")


def test_an_unset_endpoint_and_unset_credentials_are_named_at_once(workdir: Path) -> None:
    write_app(workdir, app_yaml=REFERENCED)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    with pytest.raises(ConfigError) as caught:
        credentials(app, {**ENV, "RC_KEY": "the-key"}, no_credentials)
    assert caught.value.message == "cannot do it without RC_ENDPOINT, RC_SECRET"


@pytest.mark.parametrize("load", ["manifests", "app.yaml alone"])
def test_an_endpoint_variable_whose_value_is_local_is_local(workdir: Path, load: str) -> None:
    write_app(workdir, app_yaml=REFERENCED)
    app = (
        load_apps(["demo"], Path("bots"), env=ENV)[0]
        if load == "manifests"
        else load_settings(Path("bots/demo"), ENV)
    )
    env = {**ENV, "RC_ENDPOINT": "local"}  # the credentials it references need not be set
    assert is_local(app, env)
    assert credentials(app, env, no_credentials) == LOCAL_CREDENTIALS
    assert not is_local(app, {**env, "RC_ENDPOINT": "sg"})


def test_credentials_resolve_key_secret_and_hosts(workdir: Path) -> None:
    write_app(workdir, app_yaml=REFERENCED)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    env = {**ENV, "RC_ENDPOINT": "sg", "RC_KEY": "the-key", "RC_SECRET": "the-secret-value"}
    found = credentials(app, env, no_credentials)
    assert found == Credentials(
        "the-key",
        "the-secret-value",
        ("https://api.sg-light-api.com", "https://api-b.sg-light-api.com"),
    )
    assert "the-secret-value" not in repr(found)
    assert not found.is_local
    with pytest.raises(ConfigError) as caught:
        credentials(app, {**env, "RC_SECRET": ""}, no_credentials)
    assert caught.value.message == "cannot do it without RC_SECRET"


def test_an_unusable_endpoint_variable_is_named_at_its_line_without_reading_app_yaml_again(
    workdir: Path,
) -> None:
    folder = write_app(workdir, app_yaml=REFERENCED)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    (folder / "app.yaml").unlink()  # the position travels with the app
    keys = {**ENV, "RC_KEY": "the-key", "RC_SECRET": "the-secret-value"}
    with pytest.raises(ConfigError) as caught:
        credentials(app, keys, no_credentials)
    assert caught.value.message == (
        "bots/demo/app.yaml:1:11: endpoint: environment variable RC_ENDPOINT is not set"
    )
    assert caught.value.hint == "export RC_ENDPOINT=... (local, a data center or a base URL)"
    with pytest.raises(ConfigError) as caught:
        is_local(app, {**keys, "RC_ENDPOINT": "moon"})
    assert caught.value.message == (
        "bots/demo/app.yaml:1:11: endpoint: the value of RC_ENDPOINT is not an endpoint"
    )
