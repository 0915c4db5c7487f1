"""Checking every Dify integration of some apps, in parallel: the pre-flight of each, then
(``converse``) the conversation check of each that passed. What ``provisioner check`` and
``provisioner apply --check`` run; nothing here prints.

Apps are independent: one whose Dify stand-in cannot start is reported on its own, the
others are checked. The environment is read once per app, before any call: whether it is
local, its stand-in's keys, and each target's key, URL and bot (:func:`check_apps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.apply import DEFAULT_CONCURRENCY
from provisioner.connect import DEFAULT_RETRY_BACKOFF, dify_route
from provisioner.diagnostics import Diagnostic, has_errors
from provisioner.dify.client import DEFAULT_TIMEOUT, DifyClient
from provisioner.dify.conversation import Conversation, converse
from provisioner.dify.preflight import Outcome, preflight
from provisioner.dify.targets import Target, targets_of
from provisioner.errors import PreflightError, ProvisionerError
from provisioner.models import DIFY_TYPES, DesiredApp
from provisioner.workspace import format_diagnostic


@dataclass(frozen=True)
class CheckSettings:
    """``timeout``: seconds to connect and for each read (see DifyClient); ``backoff``: the
    base of the retry backoff; ``converse``: also run the conversation check."""

    timeout: float = DEFAULT_TIMEOUT
    backoff: float = DEFAULT_RETRY_BACKOFF
    converse: bool = False
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass(frozen=True)
class Checked:
    """One integration after the checks."""

    outcome: Outcome
    conversation: Conversation | None = None

    @property
    def target(self) -> Target:
        return self.outcome.target

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        extra = self.conversation.diagnostics if self.conversation else ()
        return (*self.outcome.diagnostics, *extra)

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


@dataclass
class CheckRun:
    """Every integration checked (in manifest order), and the apps that could not be."""

    checked: list[Checked] = field(default_factory=list)
    app_errors: dict[str, ProvisionerError] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.app_errors) or any(each.failed for each in self.checked)


def check_apps(
    apps: Sequence[DesiredApp],
    env: Mapping[str, str],
    settings: CheckSettings,
    *,
    base_dir: Path,
) -> CheckRun:
    """Check every enabled Dify integration of ``apps`` (``base_dir``: where a local app
    keeps its emulator's database). ``env`` is read here only, app by app, into the values
    the checks need."""
    run = CheckRun()
    with ExitStack() as stack:
        targets: list[Target] = []
        for app in apps:
            try:
                route = stack.enter_context(dify_route(app, env, base_dir))
                targets += targets_of(app, env, route)
            except ProvisionerError as exc:
                run.app_errors[app.name] = exc
        workers = max(1, min(settings.concurrency, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dify-check") as pool:
            run.checked = list(pool.map(lambda target: _check(target, settings), targets))
    return run


def _check(target: Target, settings: CheckSettings) -> Checked:
    def connect(each: Target) -> DifyClient:
        assert each.base_url is not None
        return DifyClient(
            each.base_url, each.api_key, timeout=settings.timeout, backoff_base=settings.backoff
        )

    outcome = preflight(target, connect)
    if not settings.converse or outcome.failed:
        return Checked(outcome)
    with connect(target) as client:
        return Checked(outcome, converse(target, client))


def refusals(run: CheckRun, apps: Sequence[DesiredApp]) -> dict[str, dict[str, ProvisionerError]]:
    """app → bot userId → why ``apply --check`` gives the bot no call: its first error
    (``file:line:col: path: message``, and how many more), with that error's hint; for an
    app that could not be checked, every bot with an enabled Dify integration."""
    held: dict[str, dict[str, ProvisionerError]] = {}
    for (name, user_id), refusal in _failed_bots(run).items():
        held.setdefault(name, {})[user_id] = refusal
    for app in apps:
        error = run.app_errors.get(app.name)
        if error is not None:
            held.setdefault(app.name, {}).update(_unchecked_bots(app, error))
    return held


def _failed_bots(run: CheckRun) -> dict[tuple[str, str], PreflightError]:
    errors: dict[tuple[str, str], list[Diagnostic]] = {}
    for checked in run.checked:
        found = [d for d in checked.diagnostics if d.severity == "error"]
        if found:
            errors.setdefault((checked.target.app, checked.target.bot.userId), []).extend(found)
    refused = {}
    for key, found in errors.items():
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        refused[key] = PreflightError(
            f"refused by the pre-flight: {format_diagnostic(found[0])}{more}", hint=found[0].hint
        )
    return refused


def _unchecked_bots(app: DesiredApp, error: ProvisionerError) -> dict[str, ProvisionerError]:
    refusal = PreflightError(
        f"refused: the pre-flight of app {app.name} could not run: {error.message}",
        hint=error.hint,
    )
    return {
        bot.userId: refusal
        for bot in app.bots
        if any(i.type in DIFY_TYPES and i.enabled for i in bot.integrations)
    }
