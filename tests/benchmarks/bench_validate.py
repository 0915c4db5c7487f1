"""Benchmark: validate N apps x 10 bots (generated in a temp dir); `provisioner --version`.

Run: .venv/bin/python tests/benchmarks/bench_validate.py [--apps 500]
Targets (2-core machine): 500 apps x 10 bots in under 3 s; --version under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provisioner.validate import discover_apps, validate_apps

BOT = """# yaml-language-server: $schema=../../schemas/bot.schema.json
userId: bot-{app}-{index}
name: 消息助手 {index}
type: Message AI
profileUrl: https://cdn.example.com/bots/{index}.png
metadata:
  version: "1"
  team: app-{app}
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud/{app}
    objectNames: [RC:TxtMsg]
    events: ["message:private"]
  - type: dify_chatflow
    callbackUrl: https://api.dify.ai/v1
    stream: true
    auth:
      apiKey: ${{DIFY_KEY_{index}}}
"""


def generate(root: Path, apps: int) -> None:
    for app in range(apps):
        folder = root / f"app{app:04d}"
        folder.mkdir(parents=True)
        (folder / "app.yaml").write_text(
            f"endpoint: cn\nappKey: key-{app}\nappSecret: ${{RC_SECRET}}\n", encoding="utf-8"
        )
        for index in range(10):
            (folder / f"bot{index}.yaml").write_text(
                BOT.format(app=app, index=index), encoding="utf-8"
            )


def in_process(root: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    results = validate_apps(discover_apps([root]), workers=workers)
    elapsed = time.perf_counter() - start
    assert all(result.app is not None for result in results), "generated apps must be valid"
    return elapsed, sum(len(result.files) for result in results)


def command(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=500)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "bots"
        generate(root, options.apps)
        for workers in (1, os.cpu_count() or 1):
            elapsed, bots = in_process(root, workers)
            print(
                f"in-process, {workers} worker(s): {options.apps} apps, {bots} bots in "
                f"{elapsed:.2f} s ({elapsed / bots * 1e6:.0f} us per bot)"
            )
        total = command(["validate", str(root)], Path(temp))
        print(
            f"`provisioner validate` (new process, incl. startup): {total:.2f} s "
            f"({total / bots * 1e6:.0f} us per bot)"
        )
    versions = [command(["--version"], Path.cwd()) for _ in range(7)]
    print(
        f"`provisioner --version`: median {statistics.median(versions) * 1000:.0f} ms "
        f"(min {min(versions) * 1000:.0f} ms over {len(versions)} runs)"
    )


if __name__ == "__main__":
    main()
