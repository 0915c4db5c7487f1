"""workspace.py: which app folders the command line names, and loading them into DesiredApps
(every error at file:line:col; one app's broken manifests do not stop another)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import ConfigError, ManifestError
from provisioner.workspace import load_apps, load_each, resolve_app_folders

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
        " add them to the PROVISIONER_SECRETS bundle; `provisioner github secrets` lists what"
        " each app needs), then run again"
    )


def test_invalid_manifest_lists_file_line_col(workdir: Path) -> None:
    folder = write_app(workdir)
    (folder / "broken.yaml").write_text("userId: x\nname: no\n", encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_apps(["demo"], Path("bots"), env=ENV)
    assert caught.value.message.startswith("the manifests have ")
    assert "  bots/demo/broken.yaml:2:7: name: " in caught.value.message


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


def test_load_each_keeps_one_apps_errors_to_itself(workdir: Path) -> None:
    write_app(workdir, "demo")
    broken = write_app(workdir, "staging")
    (broken / "assistant.yaml").write_text("userId: x\nname: no\n", encoding="utf-8")
    staging, demo = load_each(["staging", "demo"], Path("bots"), env=ENV)
    assert (demo.name, demo.error, demo.app is not None) == ("demo", None, True)
    assert (staging.name, staging.app) == ("staging", None)
    assert staging.error is not None
    assert staging.error.message.startswith("the manifests have ")
    assert "  bots/staging/assistant.yaml:2:7: name: " in staging.error.message
    with pytest.raises(ManifestError):
        load_apps(["staging", "demo"], Path("bots"), env=ENV)


def test_load_each_keeps_the_warnings(workdir: Path) -> None:
    folder = write_app(workdir)
    text = (folder / "assistant.yaml").read_text(encoding="utf-8")
    (folder / "assistant.yaml").write_text(
        text.replace("https://hooks.example.com", "http://hooks.example.com"), encoding="utf-8"
    )
    (loaded,) = load_each(["demo"], Path("bots"), env=ENV)
    assert loaded.app is not None and loaded.error is None
    assert [(w.file, w.line, w.code) for w in loaded.warnings] == [
        ("bots/demo/assistant.yaml", 8, "insecure-url")
    ]


def test_two_app_folders_with_one_app_name_are_refused(workdir: Path) -> None:
    write_app(workdir, "demo")
    other = workdir / "other"
    other.mkdir()
    write_app(other, "demo")
    with pytest.raises(ConfigError) as caught:
        load_each(["demo", "other/bots/demo"], Path("bots"), env=ENV)
    assert caught.value.message == (
        "the app folders bots/demo and other/bots/demo have the same app name 'demo';"
        " they would share one state and one lock"
    )
    assert caught.value.hint == (
        "rename one folder (the folder name is the app name), or run them separately with"
        " --bots-dir"
    )
