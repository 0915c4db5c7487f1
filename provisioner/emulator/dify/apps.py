"""The apps a Dify stand-in serves: a key, a mode, a name, an input form and a few switches.

They are always configured explicitly: ``emulator.dify`` in an ``endpoint: local`` app's
``app.yaml`` (see docs/check.md), a YAML file for ``emulator serve --dify-apps``, or
:class:`DifyApp` values from Python. A key is a stand-in key of one's choosing or a ``${NAME}``
reference resolved from the environment; a bot's Dify integration reaches the stand-in app
whose key its ``auth.apiKey`` resolves to, and any other key is refused (401). The manifests'
settings become these values in :mod:`provisioner.connect` (``stand_in_apps``): the emulator
knows nothing of the manifests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.dify.protocol import MODE_NAMES
from provisioner.errors import ConfigError

INPUT_KINDS = ("text-input", "paragraph", "select", "number")


@dataclass(frozen=True)
class DifyInput:
    """One variable of the app's input form (``user_input_form``). ``max_length``: the
    longest text a ``text-input`` or ``paragraph`` takes (``None``: no limit, as Dify's 0);
    ``options``: the values a ``select`` takes."""

    variable: str
    required: bool = True
    kind: str = "text-input"
    label: str | None = None
    max_length: int | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class DifyApp:
    """One app of the stand-in.

    ``enabled=False``: the app (or its API) is off, so every call is refused: 403
    ``forbidden`` as current Dify answers, 404 with ``legacy``. ``deleted=True``: the key
    outlived its app: 403 ``forbidden`` "The app no longer exists." ``published=False``:
    ``/parameters`` and generation answer 400 ``app_unavailable``. ``legacy``: answers as
    Dify before mid-2024 does (``/info`` without ``mode``; a disabled app is 404).
    """

    api_key: str = field(repr=False)
    mode: str
    name: str = "Dify app"
    inputs: tuple[DifyInput, ...] = ()
    enabled: bool = True
    published: bool = True
    legacy: bool = False
    deleted: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODE_NAMES:
            raise ConfigError(
                f"Dify stand-in app {self.name!r}: unknown mode {self.mode!r}",
                hint=f"use one of {', '.join(MODE_NAMES)}",
            )
        if not self.api_key:
            raise ConfigError(
                f"Dify stand-in app {self.name!r} has an empty key",
                hint="set the variable its apiKey references",
            )
        for item in self.inputs:
            if item.kind not in INPUT_KINDS:
                raise ConfigError(
                    f"Dify stand-in app {self.name!r}: input {item.variable!r} has the unknown "
                    f"type {item.kind!r}",
                    hint=f"use one of {', '.join(INPUT_KINDS)}",
                )


def describe(apps: Sequence[DifyApp]) -> list[dict[str, Any]]:
    """A printable view of ``apps`` (no key)."""
    return [
        {"name": app.name, "mode": app.mode, "inputs": [item.variable for item in app.inputs]}
        for app in apps
    ]
