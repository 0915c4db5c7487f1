"""The optional extras of the distribution: which imports each one provides, and the error that
names the ``pip install`` to run when a feature needs one that is not installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from provisioner.errors import ConfigError

DISTRIBUTION = "rongcloud-bot-provisioner"

EXTRAS: dict[str, tuple[str, ...]] = {
    "emulator": ("starlette", "uvicorn"),
    "postgres": ("psycopg",),
    "tty": ("rich",),
}
"""Extra → the top-level modules it installs (``[all]`` is every one of them)."""

FEATURES = {
    "emulator": "the local emulator (endpoint: local, provisioner emulator)",
    "postgres": "the postgres state backend (backend: postgres)",
    "tty": "the live progress display",
}
"""Extra → what needs it, as the error names it."""


def install_command(extra: str) -> str:
    """``pip install 'rongcloud-bot-provisioner[emulator]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing_module(extra: str) -> str | None:
    """The first module of ``extra`` that cannot be found, or None when all can (nothing is
    imported)."""
    return next((module for module in EXTRAS[extra] if not _findable(module)), None)


def has_extra(extra: str) -> bool:
    """True when every module of ``extra`` can be found."""
    return missing_module(extra) is None


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextmanager
def requires_extra(extra: str) -> Iterator[None]:
    """Wrap the imports of a feature that needs ``extra``. When one of its modules is missing
    (found so on entry, or by an ImportError inside), a ConfigError names the feature, the
    extra and the ``pip install`` to run. Any other ImportError is left alone: it is a bug,
    not a missing extra."""
    missing = missing_module(extra)
    if missing is not None:
        raise missing_extra(extra, missing)
    try:
        yield
    except ImportError as exc:
        module = (exc.name or "").partition(".")[0]
        if module not in EXTRAS[extra]:
            raise
        raise missing_extra(extra, module) from exc


def missing_extra(extra: str, module: str) -> ConfigError:
    """``the postgres state backend (backend: postgres) needs the postgres extra, which is not
    installed (no module psycopg)``, with the ``pip install`` as the hint."""
    return ConfigError(
        f"{FEATURES[extra]} needs the {extra} extra, which is not installed (no module {module})",
        hint=f"run {install_command(extra)}",
    )
