"""Fixtures shared by the end-to-end test modules."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator

import pytest

from provisioner.emulator import EmulatorServer
from tests.apply_support import emulator
from tests.github_fake import REPO_NAME, FakeClock, GitHubFake
from tests.postgres_support import Cluster, running_cluster


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
def pg_schema(request: pytest.FixtureRequest) -> str:
    """A schema name of this test's own (tables are created in it on first use)."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    return f"t_{digest}"
