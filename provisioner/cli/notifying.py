"""The commands' side of notifications (:mod:`provisioner.notify`): the settings from the
environment, and sending a run's summaries with every problem printed as a warning.

``PROVISIONER_LANG`` (``en``, the default, or ``zh-CN``) picks the language of the
messages; ``PROVISIONER_NOTIFY_TIMEOUT`` (seconds, more than 0, at most 60; default 5) bounds
each attempt; ``PROVISIONER_RETRY_BACKOFF`` the pause before the one retry. A bad value is a
warning and the default is used: a notification never fails a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from provisioner.connect import retry_backoff
from provisioner.errors import ConfigError
from provisioner.notify import NotifySettings, Summary, notify
from provisioner.notify.deliver import DEFAULT_TIMEOUT
from provisioner.render.texts import DEFAULT_LANG, Lang, lang_from_env
from provisioner.workspace import LoadedApp

TIMEOUT_ENV = "PROVISIONER_NOTIFY_TIMEOUT"
MAX_TIMEOUT = 60.0


def notify_settings(env: Mapping[str, str], warn: Callable[[str], None]) -> NotifySettings:
    """The settings ``env`` asks for; each bad value warned about and replaced by its default."""
    return NotifySettings(
        lang=_lang(env, warn), timeout=_timeout(env, warn), backoff=_backoff(env, warn)
    )


def send_notifications(
    summaries: Sequence[Summary],
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    warn: Callable[[str], None],
) -> None:
    """Send ``summaries`` to the targets of their apps; ``warn`` each one not delivered."""
    if not any(each.app is not None and each.app.settings.notify for each in loaded):
        return
    for warning in notify(summaries, loaded, env, notify_settings(env, warn)):
        warn(warning)


def _lang(env: Mapping[str, str], warn: Callable[[str], None]) -> Lang:
    try:
        return lang_from_env(env)
    except ConfigError as exc:
        warn(f"{exc.message}; notifications are in English")
        return DEFAULT_LANG


def _timeout(env: Mapping[str, str], warn: Callable[[str], None]) -> float:
    raw = env.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if 0 < value <= MAX_TIMEOUT:
        return value
    warn(
        f"{TIMEOUT_ENV} must be a number of seconds above 0 and at most {MAX_TIMEOUT:g};"
        f" using {DEFAULT_TIMEOUT:g}"
    )
    return DEFAULT_TIMEOUT


def _backoff(env: Mapping[str, str], warn: Callable[[str], None]) -> float:
    try:
        return retry_backoff(env)
    except ConfigError as exc:
        warn(exc.message)
        return retry_backoff({})
