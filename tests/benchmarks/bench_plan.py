"""Benchmark: the offline plan of 500 apps x 10 bots against its parse + schema floor.

Generates APPS app folders of BOTS bot manifests (``${NAME}`` references in app.yaml and in
every bot), records each app's state from them (file backend, as an apply would), then
rewrites about one bot in four (renamed, metadata bumped, stream flipped, a reference
renamed), removes one bot and adds one. Then, in one process, over ROUNDS interleaved rounds:

- floor: read and parse every manifest (:func:`provisioner.manifest.load_document`) and run
  the JSON Schema check on it (only the schema part of validate);
- plan: what ``provisioner plan --no-refresh`` does for those apps, without secrets (load,
  full validation, pydantic models, the state files, canonical forms and ``make_plan``,
  through :func:`provisioner.apply.session.plan_apps`);
- make_plan: ``make_plan`` alone, on the apps and states loaded once.

Prints the medians and the ratio plan / floor (the issue's target: at most 2.0).

    .venv/bin/python tests/benchmarks/bench_plan.py [--apps 500] [--bots 10] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provisioner.apply.session import plan_apps
from provisioner.manifest import load_document
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.state import RecordedApp, RecordedBot
from provisioner.validate import APP_FILE, bot_files, discover_apps, validate_app
from provisioner.workspace import load_each

try:  # the layout of this branch
    from provisioner.plan.canonical import canonical_spec
    from provisioner.state.backends import backend_for
    from provisioner.validate.schema import check as schema_check
except ImportError:  # the flat layout before it (bb265a1), for A/B runs
    from provisioner.canonical import canonical_spec  # type: ignore[import-not-found,no-redef]
    from provisioner.schema_errors import (  # type: ignore[import-not-found,no-redef]
        check as schema_check,
    )

    from provisioner.state import backend_for  # type: ignore[attr-defined,no-redef]

TARGET_RATIO = 2.0
CONCURRENCY = 8
"""`plan --concurrency`'s default."""
SECRETS = {"RC_KEY": "key-benchmark", "RC_SECRET": "secret-benchmark", "HOOK_TOKEN": "tok"} | {
    f"DIFY_KEY_{index}": f"app-benchmark-key-{index}" for index in range(12)
}
"""What the apply that recorded the state had; the plan runs without any of them."""

APP = """endpoint: cn
appKey: ${{RC_KEY}}
appSecret: ${{RC_SECRET}}
rateLimit: 50
state: {{backend: file, path: .provisioner/state/{app}.json}}
"""

BOT = """# yaml-language-server: $schema=../../schemas/bot.schema.json
userId: {user_id}
name: 消息助手 {index}{renamed}
type: Message AI
profileUrl: https://cdn.example.com/bots/{index}.png
metadata:
  version: "{version}"
  team: {app}
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud/{app}?token=${{HOOK_TOKEN}}
    objectNames: [RC:TxtMsg]
    events: ["message:private"]
  - type: dify_chatflow
    callbackUrl: https://api.dify.ai/v1
    stream: {stream}
    auth:
      apiKey: ${{DIFY_KEY_{key}}}
"""


def bot_text(app: str, index: int, user_id: str, variant: int = 0) -> str:
    """A bot manifest; ``variant`` 1-4 changes one field (name, metadata, stream, apiKey)."""
    return BOT.format(
        app=app,
        index=index,
        user_id=user_id,
        renamed=" (renamed)" if variant == 1 else "",
        version="2" if variant == 2 else "1",
        stream="false" if variant == 3 else "true",
        key=index + 1 if variant == 4 else index,
    )


def generate(root: Path, apps: int, bots: int) -> None:
    """The manifests as last applied: ``bots`` bots per app."""
    for number in range(apps):
        app = f"app{number:04d}"
        folder = root / app
        folder.mkdir(parents=True)
        (folder / APP_FILE).write_text(APP.format(app=app), encoding="utf-8")
        for index in range(bots):
            text = bot_text(app, index, f"bot-{app}-{index}")
            (folder / f"bot{index}.yaml").write_text(text, encoding="utf-8")


def record(root: Path, workdir: Path) -> None:
    """Each app's state file, as an apply of the manifests under ``root`` would write it."""
    for folder in discover_apps([root]):
        app = validate_app(folder).app
        assert app is not None, "generated apps must be valid"
        state = RecordedApp.fresh(app.name)
        for bot in app.bots:
            spec = canonical_spec(bot, SECRETS, state.salt)
            source = Path(app.sources[bot.userId]).name
            state = state.with_bot(bot.userId, RecordedBot(spec, source=source))
        path = workdir / ".provisioner" / "state" / f"{app.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(state.data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")


def change(root: Path, bots: int) -> None:
    """About one bot in four changed, the first removed, one added (``botnew.yaml``)."""
    for number, folder in enumerate(discover_apps([root])):
        app = folder.name
        (folder / "bot0.yaml").unlink()
        for index in range(1, bots):
            if index % 4 == 1:
                text = bot_text(app, index, f"bot-{app}-{index}", variant=1 + (index + number) % 4)
                (folder / f"bot{index}.yaml").write_text(text, encoding="utf-8")
        text = bot_text(app, bots, f"bot-{app}-new")
        (folder / "botnew.yaml").write_text(text, encoding="utf-8")


def floor(folders: list[Path]) -> int:
    """Read, parse and schema-check every manifest; the number of schema diagnostics."""
    found = 0
    for folder in folders:
        settings = load_document(folder / APP_FILE, f"{folder.name}/{APP_FILE}")
        found += len(schema_check(settings, "app"))
        for path in bot_files(folder):
            document = load_document(path, f"{folder.name}/{path.name}")
            found += len(schema_check(document, "bot"))
    return found


def offline_plan(root: Path, env: Mapping[str, str]) -> list[Plan]:
    """``provisioner plan --no-refresh`` without its output: load, validate, read, plan."""
    loaded = load_each((), root, env=env, require_secrets=False)
    desired = [each.app for each in loaded if each.app is not None]
    planned = plan_apps(desired, env, refresh=False, allow_empty=False, concurrency=CONCURRENCY)
    plans = [each.plan for each in planned if each.plan is not None]
    assert len(plans) == len(loaded), [each.error for each in planned if each.error]
    return plans


def plans_only(pairs: list[tuple[DesiredApp, RecordedApp]], env: Mapping[str, str]) -> int:
    plans = [make_plan(app, state, env, check_secrets=False) for app, state in pairs]
    return len(plans)


def timed(work: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, all threads) of ``work()``."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key not in SECRETS}
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        root = workdir / "bots"
        generate(root, options.apps, options.bots)
        os.chdir(workdir)  # state paths are relative to the working directory
        record(root, workdir)
        change(root, options.bots)
        folders = discover_apps([root])
        plans = offline_plan(root, env)
        pairs = [(app, backend_for(app, env=env).read()) for app in _apps(root, env)]
        figures: dict[str, list[tuple[float, float]]] = {"floor": [], "plan": [], "make_plan": []}
        for _ in range(options.rounds):
            figures["floor"].append(timed(lambda: floor(folders)))
            figures["plan"].append(timed(lambda: offline_plan(root, env)))
            figures["make_plan"].append(timed(lambda: plans_only(pairs, env)))
    ratio = _report(options, plans, figures)
    return 0 if ratio <= TARGET_RATIO else 1


def _apps(root: Path, env: Mapping[str, str]) -> list[DesiredApp]:
    loaded = load_each((), root, env=env, require_secrets=False)
    return [each.app for each in loaded if each.app is not None]


def _report(
    options: argparse.Namespace, plans: list[Plan], figures: dict[str, list[tuple[float, float]]]
) -> float:
    """Print the figures; the ratio plan / floor of the CPU-time medians."""
    totals = {"create": 0, "adopt": 0, "update": 0, "delete": 0}
    for plan in plans:
        for action in totals:
            totals[action] += plan.counts[action]
    files = options.apps * (options.bots + 1)
    print(
        f"apps={options.apps} bots/app={options.bots} manifests={files} rounds={options.rounds}"
        f" python={sys.version.split()[0]}"
    )
    print("changes: " + ", ".join(f"{key}={value}" for key, value in totals.items()))
    wall = {name: statistics.median(t[0] for t in times) for name, times in figures.items()}
    cpu = {name: statistics.median(t[1] for t in times) for name, times in figures.items()}
    for name, times in figures.items():
        print(
            f"{name + ':':11} median {cpu[name]:.3f} s CPU (min {min(t[1] for t in times):.3f});"
            f" wall {wall[name]:.3f} s; {cpu[name] / files * 1e6:.0f} us CPU per manifest"
        )
    ratio = cpu["plan"] / cpu["floor"]
    verdict = "OK" if ratio <= TARGET_RATIO else "TOO SLOW"
    print(
        f"plan / floor: {ratio:.2f}x CPU, {wall['plan'] / wall['floor']:.2f}x wall"
        f" (target <= {TARGET_RATIO:.1f}x) -> {verdict}"
    )
    return ratio


if __name__ == "__main__":
    raise SystemExit(main())
