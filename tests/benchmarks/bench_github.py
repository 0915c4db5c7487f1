"""Benchmark: the plan comment for 1, 10 and 100 apps against the GitHub fake; the number of
GitHub API calls must not grow with the number of apps.

1. The building blocks: render and upsert the comment twice (created, then edited), as two
   pushes to a pull request would. Each app's plan creates 3 bots from a fresh state.
2. The whole command: ``provisioner github plan`` run twice as a process (a runner-shaped
   environment, no secret, apps of 3 bots each with a file state), against the fake: wall
   time per run and the GitHub calls it made.

Prints the figures; exits 1 if the call counts differ between sizes.

    .venv/bin/python tests/benchmarks/bench_github.py [APPS...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provisioner.forge.comment import RunInfo, render_plan_comment
from provisioner.github.client import GitHubClient, Repo
from provisioner.github.sync import upsert_plan_comment
from tests.github_fake import REPO_NAME, WORKFLOW_TOKEN, GitHubFake
from tests.github_support import created_doc

RUN = RunInfo("https://github.com/octo/bots/actions/runs/1", "a" * 40)


def measure(fake: GitHubFake, apps: int) -> tuple[int, int, float, float]:
    """(calls, characters, render seconds, upsert seconds) for ``apps`` apps."""
    docs = [created_doc(f"app-{index:03d}", bots=3) for index in range(apps)]
    number = fake.add_pull(REPO_NAME, head_sha="a" * 40)
    started = time.perf_counter()
    body = render_plan_comment(docs, RUN)
    rendered = time.perf_counter()
    fake.reset_calls()
    with GitHubClient(WORKFLOW_TOKEN, api_url=fake.api_url) as client:
        upsert_plan_comment(client, Repo.parse(REPO_NAME), number, body)
        upsert_plan_comment(client, Repo.parse(REPO_NAME), number, body + "\n")
    done = time.perf_counter()
    return sum(fake.calls.values()), len(body), rendered - started, done - rendered


BOT = """userId: {user_id}
name: Bot {user_id}
type: Message AI
profileUrl: https://example.com/robot.png
integrations:
  - type: dify_chat
    callbackUrl: https://api.dify.ai/v1
    auth: {{apiKey: "${{DIFY_KEY}}"}}
"""


def workspace(root: Path, apps: int) -> Path:
    for index in range(apps):
        folder = root / "bots" / f"app-{index:03d}"
        folder.mkdir(parents=True)
        (folder / "app.yaml").write_text(
            "endpoint: cn\nappKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n", encoding="utf-8"
        )
        for bot in range(3):
            user_id = f"bot-{index:03d}-{bot}"
            (folder / f"{user_id}.yaml").write_text(BOT.format(user_id=user_id), "utf-8")
    return root


def measure_command(fake: GitHubFake, apps: int, root: Path) -> tuple[int, list[float]]:
    """(GitHub calls of two runs, wall seconds of each run) of `provisioner github plan`."""
    ws = workspace(root, apps)
    number = fake.add_pull(REPO_NAME, head_sha="a" * 40)
    event = root / "event.json"
    event.write_text(
        json.dumps(
            {
                "pull_request": {
                    "number": number,
                    "head": {"sha": "a" * 40, "repo": {"full_name": REPO_NAME}},
                    "base": {"repo": {"full_name": REPO_NAME}},
                }
            }
        ),
        encoding="utf-8",
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "PROVISIONER", "DIFY_", "RC_"))
    }
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_REPOSITORY=REPO_NAME,
        GITHUB_API_URL=fake.api_url,
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_RUN_ID="1",
        GITHUB_SHA="b" * 40,
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=str(event),
        GITHUB_STEP_SUMMARY=str(root / "summary.md"),
        GITHUB_OUTPUT=str(root / "output"),
        GITHUB_TOKEN=WORKFLOW_TOKEN,
    )
    fake.reset_calls()
    times = []
    for run_id in ("1", "2"):  # another run links another page: the second run edits
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "provisioner", "github", "plan"],
            cwd=ws,
            env={**env, "GITHUB_RUN_ID": run_id},
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"github plan failed ({done.returncode}):\n{done.stderr}")
    return sum(fake.calls.values()), times


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or [1, 10, 100]
    calls: set[int] = set()
    commands: set[int] = set()
    with GitHubFake() as fake, tempfile.TemporaryDirectory() as scratch:
        fake.add_repo(REPO_NAME)
        for apps in sizes:
            count, length, render, upsert = measure(fake, apps)
            calls.add(count)
            print(
                f"{apps:4d} apps: {count} GitHub calls for two upserts, comment "
                f"{length:,} characters, render {render * 1000:.1f} ms, "
                f"upserts {upsert * 1000:.1f} ms"
            )
        for apps in sizes:
            count, times = measure_command(fake, apps, Path(scratch) / f"ws-{apps}")
            commands.add(count)
            print(
                f"{apps:4d} apps: `provisioner github plan` x2: {count} GitHub calls,"
                f" {times[0]:.2f} s (creates the comment), {times[1]:.2f} s (edits it)"
            )
    constant = len(calls) == 1 and len(commands) == 1
    print("calls constant in the number of apps:", "yes" if constant else "NO")
    return 0 if constant else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
