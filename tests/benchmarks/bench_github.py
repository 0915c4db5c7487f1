"""Benchmark: render and upsert the plan comment for 1, 10 and 100 apps against the GitHub
fake; the number of GitHub API calls must not grow with the number of apps.

Each app's plan creates 3 bots and its state is fresh, so every app has a section. The
comment is upserted twice (created, then edited), as two pushes to a pull request would.
Prints the figures; exits 1 if the call counts differ.

    .venv/bin/python tests/benchmarks/bench_github.py [APPS...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provisioner.github.client import GitHubClient, Repo
from provisioner.github.comment import RunInfo, render_plan_comment
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


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or [1, 10, 100]
    calls = set()
    with GitHubFake() as fake:
        fake.add_repo(REPO_NAME)
        for apps in sizes:
            count, length, render, upsert = measure(fake, apps)
            calls.add(count)
            print(
                f"{apps:4d} apps: {count} GitHub calls for two upserts, comment "
                f"{length:,} characters, render {render * 1000:.1f} ms, "
                f"upserts {upsert * 1000:.1f} ms"
            )
    print("calls constant in the number of apps:", "yes" if len(calls) == 1 else "NO")
    return 0 if len(calls) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
