"""The apps a Dify stand-in serves: a key, a mode, a name, an input form and a few switches.

They are always configured explicitly: ``emulator.dify`` in an ``endpoint: local`` app's
``app.yaml`` (see docs/check.md), a YAML file for ``emulator serve --dify-apps``, or
:class:`DifyApp` values from Python. A key is a stand-in key of one's choosing or a ``${NAME}``
reference resolved from the environment; a bot's Dify integration reaches the stand-in app
whose key its ``auth.apiKey`` resolves to, and any other key is refused (401).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.dify.protocol import MODE_NAMES
from provisioner.errors import ConfigError

if TYPE_CHECKING:
    from provisioner.models import StandInApp

INPUT_KINDS = ("text-input", "paragraph", "select", "number")


@dataclass(frozen=True)
class DifyInput:
    """One variable of the app's input form (``user_input_form``)."""

    variable: str
    required: bool = True
    kind: str = "text-input"
    label: str | None = None


@dataclass(frozen=True)
class DifyApp:
    """One app of the stand-in.

    ``enabled=False``: the app (or its API) is off, so every call is refused: 403
    ``forbidden`` as current Dify answers, 404 with ``legacy``. ``published=False``:
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


def apps_from_settings(apps: Sequence[StandInApp], env: Mapping[str, str]) -> list[DifyApp]:
    """The stand-in apps of an app's ``emulator.dify`` settings, keys resolved from ``env``
    (ConfigError naming an unset variable; two apps with the same key are an error)."""
    from provisioner.secrets import resolve

    resolved = [
        DifyApp(
            api_key=resolve(app.apiKey, env),
            mode=app.mode,
            name=app.name or f"Dify {MODE_NAMES[app.mode]} app",
            inputs=tuple(
                DifyInput(item.variable, required=item.required, kind=item.type)
                for item in app.inputs
            ),
            enabled=app.enabled,
            published=app.published,
        )
        for app in apps
    ]
    _refuse_shared_keys(resolved, [app.apiKey for app in apps])
    return resolved


def apps_from_file(path: Path, env: Mapping[str, str]) -> list[DifyApp]:
    """The stand-in apps listed in a YAML file (the ``emulator.dify`` format: a list of
    ``{apiKey, mode, name, inputs, enabled, published}``)."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from provisioner.diagnostics import format_path
    from provisioner.models import StandInApp

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the Dify stand-in apps in {path}: {type(exc).__name__}",
            hint="give a YAML list of {apiKey: KEY, mode: chat, ...}",
        ) from None
    try:
        apps = TypeAdapter(list[StandInApp]).validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = format_path(tuple(part for part in first["loc"] if isinstance(part, str | int)))
        raise ConfigError(
            f"{path}: {where or 'the file'}: {first['msg']}",
            hint="each app is {apiKey: KEY, mode: chat|agent-chat|advanced-chat|"
            "completion|workflow|agent, name, inputs: [{variable, required, type}]}",
        ) from None
    return apps_from_settings(apps, env)


def _refuse_shared_keys(apps: Sequence[DifyApp], references: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for index, app in enumerate(apps):
        if app.api_key in seen:
            first = seen[app.api_key]
            raise ConfigError(
                f"Dify stand-in apps {first} ({references[first]}) and {index} "
                f"({references[index]}) have the same key",
                hint="a key names one app: give each stand-in app its own variable",
            )
        seen[app.api_key] = index


def describe(apps: Sequence[DifyApp]) -> list[dict[str, Any]]:
    """A printable view of ``apps`` (no key)."""
    return [
        {"name": app.name, "mode": app.mode, "inputs": [item.variable for item in app.inputs]}
        for app in apps
    ]
