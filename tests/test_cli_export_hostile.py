"""`provisioner export` with a server that holds hostile text: every server-supplied string it
prints is escaped (an ESC or BEL in a userId cannot retitle or recolour the terminal), and no
file it writes starts with ``-`` or ``.`` (``rm *`` and ``git add *`` would read ``-rf.yaml``
as options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from tests.test_cli_export import bot, export_args, seed, workdir  # noqa: F401 (fixture)

HOSTILE = "\x1b]0;pwned\x07bot"


def test_a_hostile_user_id_is_escaped_and_names_a_safe_file(
    workdir: Path,  # noqa: F811
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(server, bot(HOSTILE), bot("-rf"), bot(".hidden"))
    assert main(export_args(server, "demo")) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\u001b]0;pwned\\u0007bot dify_chatflow" in out
    files = sorted(path.name for path in (workdir / "bots" / "demo").iterdir())
    assert files == ["__0_pwned_bot.yaml", "_hidden.yaml", "_rf.yaml", "app.yaml"]
    assert "written bots/demo/_rf.yaml" in out
