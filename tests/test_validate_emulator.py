# ruff: noqa: E501  (expected output lines are kept whole, exactly as printed)
"""`emulator.dify` in app.yaml: the Dify stand-in's apps, validated like every setting, and
a warning when no emulator will read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.render.diagnostics import render_text
from provisioner.validate import validate_app

BOT = 'userId: b\nname: B\ntype: t\nprofileUrl: https://e.com/p.png\nintegrations:\n  - {type: webhook, callbackUrl: "https://e.com/h"}\n'


def validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: str) -> list[str]:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "app.yaml").write_text(settings, encoding="utf-8")
    (folder / "b.yaml").write_text(BOT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = validate_app(Path("a"))
    return render_text(result.diagnostics).splitlines() if result.diagnostics else []


def test_stand_in_apps_are_valid_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = (
        "endpoint: local\n"
        "emulator:\n"
        "  dify:\n"
        "    - {apiKey: app-demo, mode: chat, name: Helper}\n"
        "    - apiKey: ${DIFY_KEY}\n"
        "      mode: completion\n"
        "      inputs: [{variable: query}, {variable: tone, required: false, type: select}]\n"
        "      enabled: true\n"
        "      published: false\n"
    )
    assert validated(tmp_path, monkeypatch, settings) == []


def test_bad_stand_in_apps_point_at_their_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = (
        "endpoint: local\n"
        "emulator:\n"
        "  dify:\n"
        '    - {apiKey: "", mode: robot, inputs: [{variable: 1x}], extra: 1}\n'
        "  other: 2\n"
    )
    assert validated(tmp_path, monkeypatch, settings) == [
        "a/app.yaml:4:16: error: emulator.dify[0].apiKey: must not be empty",
        "a/app.yaml:4:26: error: emulator.dify[0].mode: unknown value 'robot'; expected one of chat, agent-chat, advanced-chat, completion, workflow, agent",
        "a/app.yaml:4:53: error: emulator.dify[0].inputs[0].variable: must be a variable name: letters, digits and _, not starting with a digit",
        "a/app.yaml:4:59: error: emulator.dify[0].extra: unknown key",
        "  hint: allowed keys here: apiKey, mode, name, inputs, enabled, published, deleted",
        "a/app.yaml:5:3: error: emulator.other: unknown key",
        "  hint: allowed keys here: profile, dify",
    ]


def test_emulator_settings_of_another_endpoint_are_ignored_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = "endpoint: cn\nappKey: k\nappSecret: ${S}\nemulator: {dify: []}\n"
    assert validated(tmp_path, monkeypatch, settings) == [
        "a/app.yaml:4:1: warning: emulator: is ignored: only endpoint: local starts the embedded emulator (endpoint is cn)",
        "  hint: remove it, or pass the stand-in's apps to `provisioner emulator serve --dify-apps FILE` for an emulator of your own",
    ]
    referenced = "endpoint: ${ENDPOINT}\nappKey: k\nappSecret: ${S}\nemulator: {dify: []}\n"
    (tmp_path / "x").mkdir()
    assert validated(tmp_path / "x", monkeypatch, referenced) == []
