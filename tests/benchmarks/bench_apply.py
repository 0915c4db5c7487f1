"""Benchmark: apply 100 apps × 10 creates against the emulator with 50 ms latency per call.

    .venv/bin/python tests/benchmarks/bench_apply.py [--apps 100] [--bots 10]
        [--latency-ms 50] [--concurrency 64] [--rate 50]

The emulator runs in a separate process (so its request handling does not share the GIL
with the apply) and serves one app key per app. Two figures are measured:

* apply phase: ``apply_plan`` for every app (one thread per app, one shared call pool of
  --concurrency workers), exactly the code path of `provisioner apply` after planning;
* whole command: ``provisioner apply --auto-approve --no-refresh`` in-process on a fresh
  emulator (loading and validating 1,000 manifests, planning, applying).

The client CPU per call is printed too: CPython spends ~3 ms of CPU per signed httpx call and
state write, all under one GIL, which puts a floor of about N × 3 ms under any concurrency.

They are compared with the sequential time (N × latency) and the bound set by concurrency
and the rate limit: max(N × latency / concurrency, N / (rate × apps)), where each app key
has its own token bucket of --rate calls per second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def serve(apps: dict[str, str], latency_ms: float, urls: Any, stop: Any) -> None:
    """Child process: run the emulator until ``stop`` is set."""
    from provisioner.emulator import EmulatorServer, FaultConfig

    faults = FaultConfig(latency_ms=latency_ms)
    with EmulatorServer(apps=apps, faults=faults, rate_limit=100) as server:
        urls.put(server.url)
        stop.wait()


@contextmanager
def emulator_process(apps: dict[str, str], latency_ms: float) -> Iterator[str]:
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    stop = context.Event()
    process = context.Process(target=serve, args=(apps, latency_ms, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        process.join(10)


def write_workspace(root: Path, url: str, apps: int, bots: int, rate: float) -> dict[str, str]:
    """``bots/app-NNN/`` folders; returns the environment their ${VARS} need."""
    env = {"DIFY_KEY": "bench-dify-key"}
    for number in range(apps):
        name = f"app-{number:03d}"
        folder = root / "bots" / name
        folder.mkdir(parents=True)
        env[f"KEY_{number}"] = f"bench-key-{number}"
        env[f"SECRET_{number}"] = f"bench-secret-{number}"
        (folder / "app.yaml").write_text(
            f"endpoint: {url}\nappKey: ${{KEY_{number}}}\nappSecret: ${{SECRET_{number}}}\n"
            f"rateLimit: {rate}\n",
            encoding="utf-8",
        )
        for bot in range(bots):
            (folder / f"bot-{bot}.yaml").write_text(
                f"userId: {name}-bot-{bot}\nname: Bot {bot}\ntype: bench\n"
                "profileUrl: https://example.com/p.png\n"
                "integrations:\n"
                "  - type: dify_chat\n    callbackUrl: https://api.dify.ai/v1\n"
                '    auth: {apiKey: "${DIFY_KEY}"}\n',
                encoding="utf-8",
            )
    return env


def credentials(apps: int) -> dict[str, str]:
    return {f"bench-key-{number}": f"bench-secret-{number}" for number in range(apps)}


def time_apply_phase(root: Path, env: dict[str, str], concurrency: int) -> tuple[float, str]:
    """Seconds to apply every app's plan (plans made beforehand, like the CLI does), and the
    client process's CPU seconds during that time (all threads)."""
    from provisioner.apply import apply_plan, new_pool
    from provisioner.plan import make_plan
    from provisioner.rongcloud import RongCloudClient, hosts_for_endpoint
    from provisioner.secrets import resolve
    from provisioner.state import backend_for
    from provisioner.workspace import load_apps

    apps = load_apps([], root / "bots", env=env)
    with ExitStack() as stack:
        items = []
        for app in apps:
            settings = app.settings
            assert settings.appKey is not None and settings.appSecret is not None
            client = stack.enter_context(
                RongCloudClient(
                    app_key=resolve(settings.appKey, env),
                    app_secret=resolve(settings.appSecret, env),
                    hosts=hosts_for_endpoint(settings.endpoint),
                    rate_limit=settings.rateLimit or 50.0,
                )
            )
            backend = backend_for(app, base_dir=root)
            stack.enter_context(backend.lock("bench"))
            state = backend.read()
            items.append((make_plan(app, state, env, None), app, client, backend, state))
        pool = stack.enter_context(new_pool(concurrency))
        threads = stack.enter_context(ThreadPoolExecutor(max_workers=len(items)))
        start, cpu = time.perf_counter(), time.process_time()
        results = list(
            threads.map(lambda item: apply_plan(item[0], item[1], env, *item[2:], pool), items)
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    applied = sum(result.counts["applied"] for result in results)
    return (
        elapsed,
        f"{applied} applied; client CPU {cpu:.2f} s = {cpu / applied * 1000:.1f} ms/call",
    )


def time_whole_command(root: Path, env: dict[str, str], concurrency: int) -> tuple[float, str]:
    from provisioner.cli import main

    previous = Path.cwd()
    os.environ.update(env)
    os.chdir(root)
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(
                ["apply", "--auto-approve", "--no-refresh", "--concurrency", str(concurrency)]
            )
        return time.perf_counter() - start, f"exit {code}"
    finally:
        os.chdir(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()

    calls = args.apps * args.bots
    latency = args.latency_ms / 1000
    sequential = calls * latency
    bound = max(calls * latency / args.concurrency, calls / (args.rate * args.apps))
    print(f"{args.apps} apps × {args.bots} creates = {calls} calls, {args.latency_ms:g} ms latency")
    print(f"concurrency {args.concurrency}, rate limit {args.rate:g}/s per app key")
    print(f"sequential (N × latency):            {sequential:8.2f} s")
    print(f"bound max(N×lat/conc, N/(rate×apps)): {bound:8.2f} s")

    for label, measure in (
        ("apply phase", time_apply_phase),
        ("whole command", time_whole_command),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            with emulator_process(credentials(args.apps), args.latency_ms) as url:
                env = write_workspace(root, url, args.apps, args.bots, args.rate)
                elapsed, outcome = measure(root, env, args.concurrency)
        print(
            f"{label:13s} {elapsed:8.2f} s  ({sequential / elapsed:5.1f}× faster than sequential,"
            f" {elapsed / bound:4.2f}× the bound; {outcome})"
        )


if __name__ == "__main__":
    main()
