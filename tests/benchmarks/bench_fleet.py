"""Benchmark: a fleet in one run. `validate`, `plan` and `apply` over N apps × 10 bots.

    .venv/bin/python tests/benchmarks/bench_fleet.py [--sizes 100,300,1000]
        [--backends file,postgres] [--bots 10] [--concurrency C] [--latency-ms 0]
        [--workdir DIR] [--nofile LIMIT]

For every backend and every N: a fresh workspace of N apps (one app key each, state on the
backend; postgres: a throwaway cluster from tests/postgres_support.py, a fresh schema per N),
a fresh emulator in a separate process (so its request handling does not share the GIL with
the command), then three commands, each its own process, as a user runs them:

* ``validate``;
* ``plan`` (with refresh: every app's live bots are queried);
* ``apply --auto-approve`` (every bot a create; plans again with refresh first).

Per command it prints the wall time, the wall time per app, the peak RSS (the child's
``ru_maxrss``), the peak threads and open fds (``/proc/PID/status`` and ``/proc/PID/fd``,
sampled every 20 ms), the peak sockets among those fds, the peak PostgreSQL connections
(``pg_stat_activity``, postgres only), the exit status and the bytes of output. For apply,
the apply phase on its own (``Session.apply``, from the go to the last app's result, timed
inside the child, with the client's CPU time over it, less sensitive to a busy machine) and
per app: the issue's target is that this per-app figure at the largest
N stays within 1.2× of its value at the smallest.

``--nofile`` runs the commands under that ``ulimit -n`` (e.g. 256, the issue's target).
--concurrency defaults to the CLI's default. Figures depend on the machine: compare runs of
one sitting, not across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_apply import STATE_LINES, credentials, emulator_process, write_workspace  # noqa: E402

TIMES_ENV = "BENCH_FLEET_TIMES"
"""The child writes the apply phase's seconds to this file."""
SAMPLE_SECONDS = 0.02


def child(argv: Sequence[str]) -> int:
    """In the child process: time ``Session.apply`` and run the CLI."""
    from provisioner.apply.session import Session
    from provisioner.cli import main

    original = Session.apply

    def timed(self: Session, *args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            Path(os.environ[TIMES_ENV]).write_text(f"{elapsed} {cpu}\n")

    Session.apply = timed  # type: ignore[method-assign]
    return main(list(argv))


@dataclass
class Peaks:
    threads: int = 0
    fds: int = 0
    sockets: int = 0
    connections: int = 0
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def sample(pid: int, peaks: Peaks, dsn: str | None) -> None:
    """Until ``peaks.stop``: the process's threads, fds and sockets, and the server's
    client connections (but this sampler's own)."""
    connection = None
    if dsn is not None:
        import psycopg

        connection = psycopg.connect(dsn, autocommit=True)
    try:
        while not peaks.stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                status = Path(f"/proc/{pid}/status").read_text()
                threads = int(status.split("Threads:")[1].split()[0])
                links = []
                for name in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
                peaks.threads = max(peaks.threads, threads)
                peaks.fds = max(peaks.fds, len(links))
                peaks.sockets = max(
                    peaks.sockets, sum(link.startswith("socket:") for link in links)
                )
                peaks.samples += 1
            if connection is not None:
                row = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()"
                ).fetchone()
                peaks.connections = max(peaks.connections, int(row[0]) if row else 0)
            time.sleep(SAMPLE_SECONDS)
    finally:
        if connection is not None:
            connection.close()


@dataclass(frozen=True)
class Measured:
    command: str
    apps: int
    wall: float
    code: int
    rss_mb: float
    peaks: Peaks
    output: int
    apply_phase: float | None
    apply_cpu: float | None


def run_command(
    root: Path, env: dict[str, str], argv: list[str], apps: int, dsn: str | None, nofile: int | None
) -> Measured:
    times = root / "apply-phase.txt"
    times.unlink(missing_ok=True)
    out = root / f"out-{argv[0]}.txt"
    child_env = {**os.environ, **env, TIMES_ENV: str(times), "NO_COLOR": "1"}

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with out.open("wb") as sink:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", *argv],
            cwd=root,
            env=child_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limit,
        )
        peaks = Peaks()
        sampler = threading.Thread(target=sample, args=(process.pid, peaks, dsn), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        peaks.stop.set()
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    phase, cpu = map(float, times.read_text().split()) if times.exists() else (None, None)
    return Measured(
        argv[0],
        apps,
        wall,
        process.returncode,
        usage.ru_maxrss / 1024,
        peaks,
        out.stat().st_size,
        phase,
        cpu,
    )


def show(m: Measured) -> None:
    phase = ""
    if m.apply_phase is not None:
        per_app = m.apply_phase / m.apps * 1000
        cpu = (m.apply_cpu or 0) / m.apps * 1000
        phase = f"  apply phase {m.apply_phase:7.2f} s = {per_app:6.1f} ms/app (CPU {cpu:5.1f})"
    print(
        f"{m.command:8} N={m.apps:5}  wall {m.wall:7.2f} s = {m.wall / m.apps * 1000:6.1f} ms/app"
        f"  RSS {m.rss_mb:6.1f} MB  threads {m.peaks.threads:5}  fds {m.peaks.fds:5}"
        f"  sockets {m.peaks.sockets:5}  pg {m.peaks.connections:3}  exit {m.code}"
        f"  out {m.output / 1024:8.1f} KB{phase}",
        flush=True,
    )


def measure_size(
    args: argparse.Namespace, backend: str, apps: int, scratch: Path, dsn: str | None
) -> list[Measured]:
    root = Path(tempfile.mkdtemp(dir=scratch, prefix=f"{backend}-{apps}-"))
    state_line = STATE_LINES[backend]
    extra: dict[str, str] = {}
    if backend == "postgres":
        assert dsn is not None
        state_line %= f"bench_{backend}_{apps}_{os.getpid()}"
        extra["BENCH_STATE_DSN"] = dsn
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    results = []
    with emulator_process(credentials(apps), args.latency_ms) as url:
        env = write_workspace(root, url, apps, args.bots, args.rate, state_line)
        env.update(extra)
        for argv in (
            ["validate"],
            ["plan", *concurrency],
            ["apply", "--auto-approve", *concurrency],
        ):
            measured = run_command(root, env, argv, apps, dsn, args.nofile)
            show(measured)
            results.append(measured)
    return results


@contextlib.contextmanager
def cluster_dsn(backends: Sequence[str]) -> Iterator[str | None]:
    if "postgres" not in backends:
        yield None
        return
    from tests.postgres_support import running_cluster

    with running_cluster() as cluster:
        yield cluster.dsn()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        raise SystemExit(child(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--backends", default="file,postgres")
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--nofile", type=int, default=None, help="ulimit -n for the commands")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    backends = args.backends.split(",")
    print(
        f"{args.bots} bots per app, emulator latency {args.latency_ms:g} ms,"
        f" concurrency {args.concurrency or 'default'}, ulimit -n {args.nofile or 'inherited'},"
        f" {os.cpu_count()} CPUs"
    )
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch, cluster_dsn(backends) as dsn:
        for backend in backends:
            print(f"-- backend {backend}")
            per_app: dict[int, float] = {}
            cpu_per_app: dict[int, float] = {}
            for apps in sizes:
                for m in measure_size(args, backend, apps, Path(scratch), dsn):
                    figures.append({**m.__dict__, "backend": backend, "peaks": vars(m.peaks)})
                    if m.apply_phase is not None:
                        per_app[apps] = m.apply_phase / apps
                        cpu_per_app[apps] = (m.apply_cpu or 0) / apps
            if len(per_app) > 1:
                small, large = min(per_app), max(per_app)
                ratio = per_app[large] / per_app[small]
                cpu_ratio = cpu_per_app[large] / cpu_per_app[small]
                print(
                    f"apply phase per app: N={large} is {ratio:.2f}× N={small}"
                    f" (target ≤ 1.2×: {'PASS' if ratio <= 1.2 else 'MISS'});"
                    f" client CPU per app: {cpu_ratio:.2f}×"
                )
    if args.json:
        for each in figures:
            each["peaks"].pop("stop", None)
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
