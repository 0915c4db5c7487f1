"""Benchmark: what installing provisioner costs, cold (a fresh venv, an empty cache each time):
distributions, MB of site-packages and seconds. Prints the figures.

Rows:
- ``action core no-uv|uv``: the Action's own steps (action.yml, every ``run:`` step before
  the command itself), run as the runner would, with ``extras`` empty, without ``uv`` on PATH
  (the Action then installs uv from requirements/uv.lock; before it, pip installed everything)
  and with it; ``action all no-uv|uv``: the same with ``extras: all``;
- ``pre-commit hook``: ``pre-commit run`` of the hook at HEAD (commit what you measure) on
  bots/demo; the figures are those of the environment pre-commit builds for the hook;
- ``--ref REV`` adds the same rows for the commit REV (``git archive``), for a before figure.

"dists" counts the distributions installed besides provisioner itself, pip and setuptools;
"MB" is the size of site-packages without pip and setuptools (the Action installs no
bytecode; pre-commit's pip and the Action before uv compile it, so part of their MB is
``.pyc`` files); "venv MB" is the whole environment, pip and setuptools included. "install
s" is the wall clock of the install, "cpu s" the CPU time it took (steadier on a shared
machine), "first run" the wall clock of the first ``provisioner validate bots/demo`` after it.

    .venv/bin/python tests/benchmarks/bench_install.py [--ref REV] [--rows core,all,hook]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "bots" / "demo"
NOT_COUNTED = re.compile(r"^(pip|setuptools|_distutils_hack|pkg_resources|distutils-precedence)")
OWN = re.compile(r"^rongcloud_bot_provisioner")
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


@dataclass(frozen=True)
class Figures:
    dists: int
    megabytes: float
    whole: float
    seconds: float
    cpu: float
    first_run: float


def site_packages(prefix: Path) -> Path:
    [found] = prefix.glob("lib/python3*/site-packages")
    return found


def measure(site: Path) -> tuple[int, float]:
    """Distributions (without provisioner, pip, setuptools) and MB (without pip, setuptools)."""
    dists = [
        entry.name
        for entry in site.glob("*.dist-info")
        if not NOT_COUNTED.match(entry.name) and not OWN.match(entry.name)
    ]
    size = sum(
        path.stat().st_size
        for entry in site.iterdir()
        if not NOT_COUNTED.match(entry.name)
        for path in ([entry] if entry.is_file() else entry.rglob("*"))
        if path.is_file() and not path.is_symlink()
    )
    return len(dists), size / 1e6


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: on a shared machine a
    steadier figure than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def size(folder: Path) -> float:
    """MB of every file under ``folder`` (the whole venv: interpreter links, pip, scripts)."""
    files = (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.stat().st_size for path in files) / 1e6


def first_run(prefix: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(
        [str(prefix / "bin" / "provisioner"), "validate", str(DEMO)],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.monotonic() - start


def cold_env(scratch: Path, tools: Path) -> dict[str, str]:
    """The machine's environment (index settings included) with empty caches, no venv."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update(
        PATH=f"{tools}:/usr/local/bin:/usr/bin:/bin",
        PIP_CACHE_DIR=str(scratch / "pip-cache"),
        UV_CACHE_DIR=str(scratch / "uv-cache"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def tools_dir(scratch: Path, uv: Path | None) -> Path:
    """``python`` (as setup-python gives it) and, when asked, ``uv`` alone on PATH."""
    tools = scratch / "tools"
    tools.mkdir()
    (tools / "python").symlink_to(Path(sys.executable))
    if uv is not None:
        (tools / "uv").symlink_to(uv)
    return tools


def evaluate(text: str, context: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        found: Any = context
        for part in match.group(1).split("."):
            found = found[part]
        return str(found)

    return EXPRESSION.sub(value, text)


def run_action_steps(source: Path, extras: str, env: dict[str, str], scratch: Path) -> Path:
    """Every ``run:`` step of ``source``'s action.yml before the command step, in order, with
    its ``env:`` evaluated (inputs, github.action_path, steps.*.outputs); the venv's prefix."""
    action = yaml.safe_load((source / "action.yml").read_text(encoding="utf-8"))
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs["extras"] = extras
    context: dict[str, Any] = {
        "inputs": inputs,
        "github": {"action_path": str(source)},
        "steps": {},
    }
    runner_temp = scratch / "runner-temp"
    runner_temp.mkdir()
    for number, step in enumerate(action["runs"]["steps"]):
        if step.get("id") == "run":
            break
        if "run" not in step:
            continue  # setup-python and actions/cache: the runner's, not measured here
        output = scratch / f"output-{number}"
        output.write_text("")
        step_env = {name: evaluate(str(value), context) for name, value in step["env"].items()}
        step_env.update(RUNNER_TEMP=str(runner_temp), GITHUB_OUTPUT=str(output))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env={**env, **step_env},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"step {step.get('name')!r} failed:\n{result.stdout}{result.stderr}")
        lines = output.read_text().splitlines()
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": dict(line.split("=", 1) for line in lines)}
    return runner_temp / "provisioner"


def action_row(source: Path, extras: str, uv: Path | None) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-install-") as name:
        scratch = Path(name)
        env = cold_env(scratch, tools_dir(scratch, uv))
        start, cpu = time.monotonic(), children_cpu()
        prefix = run_action_steps(source, extras, env, scratch)
        seconds, cpu = time.monotonic() - start, children_cpu() - cpu
        dists, megabytes = measure(site_packages(prefix))
        return Figures(dists, megabytes, size(prefix), seconds, cpu, first_run(prefix, env))


def git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def hook_row(ref: str | None) -> Figures:
    """``pre-commit run`` of the hook from this repository at ``ref`` (default HEAD: commit
    what you measure) in a scratch user repository holding bots/demo; the figures of the
    environment pre-commit builds for the hook (try-repo would remove it at exit)."""
    pre_commit = Path(sys.executable).parent / "pre-commit"
    rev = subprocess.run(
        ["git", "rev-parse", ref or "HEAD"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-hook-") as name:
        scratch = Path(name)
        user = scratch / "user"
        shutil.copytree(DEMO, user / "bots" / "demo")
        hook = {"id": "provisioner-validate"}
        config = {"repos": [{"repo": str(REPO), "rev": rev, "hooks": [hook]}]}
        (user / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
        git(user, "init", "-q")
        git(user, "add", ".")
        env = cold_env(scratch, tools_dir(scratch, None))
        env["PRE_COMMIT_HOME"] = str(scratch / "home")
        files = [f"bots/demo/{path.name}" for path in DEMO.glob("*.yaml")]
        start, cpu = time.monotonic(), children_cpu()
        subprocess.run(
            [str(pre_commit), "run", "--files", *files],
            cwd=user,
            env=env,
            check=True,
            capture_output=True,
        )
        seconds, cpu = time.monotonic() - start, children_cpu() - cpu
        [prefix] = (scratch / "home").glob("repo*/py_env-*")
        dists, megabytes = measure(site_packages(prefix))
        return Figures(dists, megabytes, size(prefix), seconds, cpu, first_run(prefix, env))


def checkout(ref: str, scratch: Path) -> Path:
    """The tree of commit ``ref`` (``git archive``), as the Action's checkout would be."""
    source = scratch / "source"
    source.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source


def find_uv() -> Path | None:
    found = shutil.which("uv") or next(
        (str(path) for path in (Path("/tmp/uv/bin/uv"),) if path.exists()), None
    )
    return Path(found).resolve() if found else None


def measurements(
    sources: list[tuple[Path, str | None]], wanted: set[str], uv: Path | None
) -> Iterator[tuple[str, Figures]]:
    """Each row kind for every source in turn (before, after: interleaved)."""
    installers: list[tuple[str, Path | None]] = [("no-uv", None)] + ([("uv", uv)] if uv else [])
    for extras, key in (("", "core"), ("all", "all")):
        if key not in wanted:
            continue
        for installer, tool in installers:
            for source, ref in sources:
                if ref is None or tool is None:  # the Action used no uv before
                    name = f"action {key} {installer}" + (f" @{ref}" if ref else "")
                    yield name, action_row(source, extras, tool)
    if "hook" in wanted:
        for _, ref in sources:
            yield "pre-commit hook" + (f" @{ref}" if ref else ""), hook_row(ref)


def line(name: str, figures: Figures) -> str:
    row = f"{name:<28} {figures.dists:>5} {figures.megabytes:>7.1f} {figures.whole:>8.1f}"
    row += f" {figures.seconds:>9.1f}"
    return f"{row} {figures.cpu:>7.1f} {figures.first_run:>9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="also measure this commit (a before figure)")
    parser.add_argument("--rows", default="core,all,hook", help="core, all, hook")
    args = parser.parse_args()
    wanted = set(args.rows.split(","))
    uv = find_uv()
    print(f"uv: {uv or 'not found (no-uv rows only)'}; python {sys.version.split()[0]}")
    heads = f"{'dists':>5} {'MB':>7} {'venv MB':>8} {'install s':>9} {'cpu s':>7} {'first run':>9}"
    print(f"{'row':<28} {heads}")
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as name:
        sources: list[tuple[Path, str | None]] = [(REPO, None)]
        if args.ref:
            sources.insert(0, (checkout(args.ref, Path(name)), args.ref))
        for row, figures in measurements(sources, wanted, uv):
            print(line(row, figures), flush=True)


if __name__ == "__main__":
    main()
