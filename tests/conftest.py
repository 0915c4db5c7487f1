"""Fixtures shared by the end-to-end test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisioner.emulator import EmulatorServer
from tests.apply_support import emulator
from tests.github_fake import REPO_NAME, FakeClock, GitHubFake


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
