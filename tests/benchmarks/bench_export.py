"""Benchmark: `provisioner export` of 100 apps × 10 bots from the emulator.

    .venv/bin/python tests/benchmarks/bench_export.py [--apps 100] [--bots 10]
        [--concurrency 8] [--latency-ms 0] [--workdir DIR]

The emulator runs in a separate process (its request handling does not share the GIL with
the export) and serves one app key per app, each seeded with --bots bots (a webhook and a
Dify integration, metadata, a Chinese name). Two figures, each the whole command in-process
on a workspace of app folders that hold only app.yaml:

* first export: query every app (one /v3/bot/query.json page of 20), write every manifest;
* --merge re-export: the same, reading and round-tripping every existing manifest with
  ruamel.yaml, finding nothing to change and rewriting nothing.

Figures only: nothing is asserted (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_apply import credentials, emulator_process  # noqa: E402


def seed(url: str, apps: int, bots: int) -> None:
    from provisioner.rongcloud import BotPayload, RongCloudClient

    for number in range(apps):
        with RongCloudClient(
            app_key=f"bench-key-{number}",
            app_secret=f"bench-secret-{number}",
            hosts=[url],
            rate_limit=100,
        ) as client:
            for bot in range(bots):
                client.create_bot(
                    BotPayload.model_validate(
                        {
                            "userId": f"app-{number:03d}-bot-{bot}",
                            "name": f"消息助手 {bot}",
                            "type": "Message AI",
                            "profileUrl": "https://example.com/robot.png",
                            "metadata": {"version": "1", "team": "bench"},
                            "integrations": [
                                {"type": "webhook", "callbackUrl": "https://h.example.com/cb"},
                                {
                                    "type": "dify_chatflow",
                                    "callbackUrl": "https://api.dify.ai/v1",
                                    "auth": {"apiKey": f"app-bench-{number}-{bot}"},
                                },
                            ],
                        }
                    )
                )


def write_workspace(root: Path, url: str, apps: int) -> list[str]:
    names = []
    for number in range(apps):
        name = f"app-{number:03d}"
        folder = root / "bots" / name
        folder.mkdir(parents=True)
        (folder / "app.yaml").write_text(
            f"endpoint: {url}\nappKey: bench-key-{number}\nappSecret: ${{SECRET_{number}}}\n"
            "rateLimit: 100\n",
            encoding="utf-8",
        )
        os.environ[f"SECRET_{number}"] = f"bench-secret-{number}"
        names.append(name)
    return names


def timed_export(names: list[str], concurrency: int, *extra: str) -> float:
    from provisioner.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["export", *names, "--concurrency", str(concurrency), *extra])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"export exited {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with (
        emulator_process(credentials(args.apps), args.latency_ms) as url,
        tempfile.TemporaryDirectory(dir=args.workdir) as scratch,
    ):
        seed(url, args.apps, args.bots)
        os.chdir(scratch)
        names = write_workspace(Path(scratch), url, args.apps)
        first = timed_export(names, args.concurrency)
        again = timed_export(names, args.concurrency, "--merge")
        files = len(list(Path(scratch, "bots").rglob("*-bot-*.yaml")))
    total = args.apps * args.bots
    print(
        f"export {args.apps} apps × {args.bots} bots ({files} manifests), concurrency"
        f" {args.concurrency}, emulator latency {args.latency_ms:g} ms"
    )
    for label, seconds in (("first export", first), ("--merge, no change", again)):
        print(
            f"  {label:<20} {seconds:6.2f} s   {seconds / args.apps * 1000:7.1f} ms/app"
            f"   {seconds / total * 1000:6.2f} ms/bot"
        )


if __name__ == "__main__":
    main()
