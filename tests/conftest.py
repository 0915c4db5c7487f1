"""Fixtures shared by the end-to-end test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisioner.emulator import EmulatorServer
from tests.apply_support import emulator


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A fresh emulator serving the app of :mod:`tests.apply_support` (overridden by modules
    that need another one)."""
    with emulator() as running:
        yield running
