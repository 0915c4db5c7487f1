"""Shell completion (bash, zsh, fish) through the secret guard: the script click generates is
loaded into a real bash, which then completes ``provisioner pl`` to ``plan``; completing the
command names imports no command module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli import COMMANDS

BIN = Path(sys.executable).parent
BASH = shutil.which("bash")


def completion_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVISIONER")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run_provisioner(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner"],
        env=completion_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _provisioner_completion provisioner"),
        ("zsh", "#compdef provisioner"),
        ("fish", "complete --no-files --command provisioner"),
    ],
)
def test_each_shell_gets_its_completion_script(shell: str, marker: str) -> None:
    result = run_provisioner(_PROVISIONER_COMPLETE=f"{shell}_source")
    assert (result.returncode, result.stderr) == (0, "")
    assert marker in result.stdout


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_a_real_bash_loads_the_script_and_completes_a_command(tmp_path: Path) -> None:
    assert (BIN / "provisioner").exists(), "the console script is installed beside python"
    script = (
        'eval "$(_PROVISIONER_COMPLETE=bash_source provisioner)"\n'
        "complete -p provisioner\n"
        "for words in 'provisioner pl' 'provisioner state sh' 'provisioner plan --for'; do\n"
        '  read -r -a COMP_WORDS <<< "$words"; COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        "  COMPREPLY=(); _provisioner_completion provisioner\n"
        '  echo "$words => ${COMPREPLY[*]}"\n'
        "done\n"
    )
    result = subprocess.run(
        [str(BASH), "--norc", "--noprofile", "-c", script],
        cwd=tmp_path,
        env=completion_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "complete -o nosort -F _provisioner_completion provisioner",
        "provisioner pl => plan",
        "provisioner state sh => show",
        "provisioner plan --for => --format",
    ]


def test_completing_the_command_names_imports_no_command() -> None:
    code = (
        "import os, sys\n"
        "from provisioner.cli import main\n"
        "try:\n"
        "    main([])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.endswith('_cmd')), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=completion_env(
            _PROVISIONER_COMPLETE="bash_complete", COMP_WORDS="provisioner ", COMP_CWORD="1"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    listed = [line.split(",")[1] for line in result.stdout.splitlines()]
    assert listed[: len(COMMANDS)] == sorted(COMMANDS)
    assert result.stderr.strip() == "[]"
