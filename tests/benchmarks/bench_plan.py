"""Benchmark: offline plan of 500 apps x 10 bots (pure make_plan), target under 3 s.

Each app is recorded from its manifests, then about one bot in four is changed (renamed,
metadata bumped, integration flipped), one is removed and one added, so the plan exercises
updates, deletes and creates besides no-ops. Prints the figures.

    .venv/bin/python tests/benchmarks/bench_plan.py [APPS] [BOTS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from provisioner.models import AppSettings, Bot, DesiredApp
from provisioner.plan import make_plan
from provisioner.plan.canonical import canonical_spec
from provisioner.state import RecordedApp, RecordedBot

ENV = {"DIFY_KEY": "app-benchmark-key", "DIFY_KEY_2": "app-rotated"}
TARGET_SECONDS = 3.0


def bot(user_id: str, *, variant: int = 0) -> Bot:
    data: dict[str, Any] = {
        "userId": user_id,
        "name": f"Bot {user_id}" + (" (renamed)" if variant == 1 else ""),
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "2" if variant == 2 else "1", "team": "core"},
        "integrations": [
            {
                "type": "webhook",
                "callbackUrl": "https://hooks.example.com/rc",
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
            },
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "stream": variant != 3,
                "auth": {"apiKey": "${DIFY_KEY_2}" if variant == 4 else "${DIFY_KEY}"},
            },
        ],
    }
    return Bot.model_validate(data)


def app(name: str, bots: list[Bot]) -> DesiredApp:
    return DesiredApp(
        name=name,
        folder=Path("bots") / name,
        settings=AppSettings(endpoint="local"),
        bots=tuple(bots),
        sources={b.userId: f"bots/{name}/{b.userId}.yaml" for b in bots},
    )


def workload(apps: int, bots: int) -> list[tuple[DesiredApp, RecordedApp]]:
    pairs = []
    for number in range(apps):
        name = f"app-{number:03d}"
        recorded_bots = [bot(f"bot-{index}") for index in range(bots)]
        state = RecordedApp.fresh(name)
        for b in recorded_bots:
            state = state.with_bot(b.userId, RecordedBot(canonical_spec(b, ENV, state.salt)))
        desired = [
            bot(b.userId, variant=(index + number) % 5 if index % 3 == 0 else 0)
            for index, b in enumerate(recorded_bots[1:], start=1)
        ]
        desired.append(bot("bot-new"))
        pairs.append((app(name, desired), state))
    return pairs


def main() -> int:
    apps = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    bots = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    pairs = workload(apps, bots)
    start = time.perf_counter()
    plans = [make_plan(desired, state, ENV) for desired, state in pairs]
    made = time.perf_counter() - start
    start = time.perf_counter()
    ids = [plan.id for plan in plans]
    hashed = time.perf_counter() - start
    totals = {"create": 0, "adopt": 0, "update": 0, "delete": 0}
    for plan in plans:
        for action in totals:
            totals[action] += plan.counts[action]
    total = made + hashed
    print(f"apps={apps} bots/app={bots} bots={apps * bots} distinct ids={len(set(ids))}")
    print("changes: " + ", ".join(f"{key}={value}" for key, value in totals.items()))
    print(f"make_plan: {made:.3f} s ({made / apps * 1000:.2f} ms/app)")
    print(f"plan ids:  {hashed:.3f} s")
    print(
        f"total:     {total:.3f} s (target < {TARGET_SECONDS:.0f} s) -> "
        f"{'OK' if total < TARGET_SECONDS else 'TOO SLOW'}"
    )
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
