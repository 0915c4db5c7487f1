"""Fixtures shared by the end-to-end test modules."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.emulator import EmulatorServer
from tests.apply_support import APP_KEY, APP_SECRET, Workspace, emulator
from tests.git_support import make_clone, make_origin
from tests.github_fake import REPO_NAME, FakeClock, GitHubFake
from tests.github_world import GIT_STATE, SECOND_KEY, SECOND_SECRET, World
from tests.gitlab_state_fake import GitLabStateFake, gitlab_state_fake
from tests.postgres_support import Cluster, running_cluster
from tests.state_support import close_opened


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A fresh emulator serving the app of :mod:`tests.apply_support` (overridden by modules
    that need another one)."""
    with emulator() as running:
        yield running


@pytest.fixture
def fake_clock() -> FakeClock:
    """The clock shared by the GitHub fake and the client under test."""
    return FakeClock()


@pytest.fixture
def github(fake_clock: FakeClock) -> Iterator[GitHubFake]:
    """A fresh GitHub fake serving the repository ``octo/bots`` on loopback."""
    with GitHubFake(clock=fake_clock.now) as fake:
        fake.add_repo(REPO_NAME)
        yield fake


@pytest.fixture
def world_server() -> Iterator[EmulatorServer]:
    """The emulator of the end-to-end GitHub tests: two apps."""
    with EmulatorServer(apps={APP_KEY: APP_SECRET, SECOND_KEY: SECOND_SECRET}) as running:
        yield running


@pytest.fixture
def world(
    tmp_path: Path,
    github: GitHubFake,
    world_server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    """GitHub, the emulator, the origin and the two runners' clones, with app ``demo``
    (git state backend) and its bots ``assistant-bot`` and ``helper-bot`` in both clones."""
    origin = make_origin(tmp_path)
    pr = Workspace(make_clone(origin, tmp_path / "pr"), world_server.url)
    main_clone = Workspace(make_clone(origin, tmp_path / "main"), world_server.url)
    made = World(tmp_path, github, world_server, capsys, pr, main_clone)
    made.both("app", extra=GIT_STATE)
    made.both("bot", "assistant-bot", name="Assistant")
    made.both("bot", "helper-bot", name="Helper")
    yield made
    close_opened()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole session (see tests/postgres_support.py).
    The tests that use it fail, never skip, when it cannot start."""
    try:
        context = running_cluster()
        cluster = context.__enter__()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"the PostgreSQL tests need a server, which did not start: {exc}")
    try:
        yield cluster
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def gitlab_state() -> Iterator[GitLabStateFake]:
    """A fresh GitLab Terraform-state stand-in on loopback (tests/gitlab_state_fake.py), with
    a Maintainer-role access token ``glpat-maintainer`` (user ``project_42_bot``)."""
    with gitlab_state_fake() as fake:
        fake.add_token("glpat-maintainer", "project_42_bot", "maintainer")
        yield fake


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> str:
    """A schema name of this test's own (tables are created in it on first use)."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    return f"t_{digest}"
