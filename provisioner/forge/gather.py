"""The plans a `github plan` or `github drift` run reports: every loaded app planned here
(:func:`gather`, no lock, the same path as `provisioner plan`), or the results of the shard
jobs merged (:func:`merged_results`, the fan-in), with the apps that could not be planned;
and the drift records beside the state: what a drift run saw, written by the run that
refreshed the apps (:func:`write_drift_records`), read by a plan (:func:`read_drift_records`).

Nothing here prints: the CLI loads the apps (masking every secret value before anything is
printed) and shows the plans and the failures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from provisioner.apply.session import Planned, plan_apps
from provisioner.errors import ConfigError, ProvisionerError
from provisioner.forge.comment import AppFailure
from provisioner.forge.drift import drift_record
from provisioner.forge.seen import SeenApp, seen_apps
from provisioner.forge.shards import merge_shard_results
from provisioner.models import DesiredApp
from provisioner.plan import PlanDoc
from provisioner.state.backends import backend_for
from provisioner.state.drift_record import DriftRecord
from provisioner.state.holder import utc_now
from provisioner.workspace import LoadedApp


@dataclass(frozen=True)
class Gathered:
    """The plans a run reports: planned here, or merged from shard results (then ``loaded``
    is empty and ``head_sha`` is theirs, when they say)."""

    loaded: Sequence[LoadedApp]
    docs: list[PlanDoc]
    failures: list[AppFailure]
    head_sha: str | None = None
    seen: Mapping[str, DriftRecord | None] = field(default_factory=dict)
    """What the last drift run saw of each app (None: nothing recorded yet); an app not in
    it was not read (:func:`read_drift_records`)."""

    def check_head(self, head_sha: str) -> None:
        """ConfigError when the shard results are for another commit than ``head_sha``."""
        if self.head_sha not in (None, head_sha):
            raise ConfigError(
                f"the shard results are for commit {self.head_sha[:12]}, this run is for"
                f" {head_sha[:12]}",
                hint="merge only the results of this run's shard jobs",
            )


def gather(
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    *,
    refresh: bool,
    allow_empty: bool,
    concurrency: int,
) -> Gathered:
    """Plan every loaded app without a lock (without secrets unless refreshing: a secret
    the environment does not hold is not checked)."""
    desired = [each.app for each in loaded if each.app is not None]
    planned = plan_apps(
        desired, env, refresh=refresh, allow_empty=allow_empty, concurrency=concurrency
    )
    docs = [each.plan.document for each in planned if each.plan is not None]
    return Gathered(loaded, docs, failures_of(loaded, planned))


def failures_of(loaded: Sequence[LoadedApp], planned: Sequence[Planned]) -> list[AppFailure]:
    """Every app that could not be loaded, then every app that could not be planned."""
    failures = [
        AppFailure(each.name, each.error.message, each.error.hint) for each in loaded if each.error
    ]
    failures += [
        AppFailure(each.app.name, each.error.message, each.error.hint)
        for each in planned
        if each.error is not None
    ]
    return failures


def merged_results(files: Sequence[Path]) -> Gathered:
    """The plan documents, failures and head SHA of the shard results ``files``."""
    texts = {}
    for path in files:
        try:
            texts[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the shard result {path}: {getattr(exc, 'strerror', None) or exc}",
                hint="pass the files the shard jobs wrote with --results-out",
            ) from exc
    merged = merge_shard_results(texts)
    docs = [doc.copy() for doc in merged.plans]
    return Gathered((), docs, list(merged.failures), merged.head_sha, merged.seen)


def read_drift_records(gathered: Gathered, env: Mapping[str, str]) -> tuple[Gathered, list[str]]:
    """``gathered`` with the drift record of every app it planned here (merged shard results
    carry theirs), and a warning for each record that could not be read: a record is advice,
    it never fails a plan."""
    planned = {doc["app"] for doc in gathered.docs}
    seen = dict(gathered.seen)
    warnings = []
    for app in _desired(gathered):
        if app.name not in planned:
            continue
        try:
            seen[app.name] = backend_for(app, env=env).read_drift_record()
        except ProvisionerError as exc:
            warnings.append(
                f"app {app.name}: what the last drift run saw is not shown: {_said(exc)}"
            )
    return replace(gathered, seen=seen), warnings


def drift_seen(
    gathered: Gathered, env: Mapping[str, str], warn: Callable[[list[str]], None]
) -> tuple[Gathered, list[SeenApp]]:
    """:func:`read_drift_records` (its warnings to ``warn``), and what the records say about
    this plan's bots, apps whose drift setting is ``revert`` marked so: what `github plan`
    and `gitlab plan` show."""
    gathered, warnings = read_drift_records(gathered, env)
    warn(warnings)
    reverting = [
        each.app.name
        for each in gathered.loaded
        if each.app is not None and each.app.settings.drift == "revert"
    ]
    return gathered, seen_apps(gathered.docs, gathered.seen, now=utc_now(), reverting=reverting)


def write_drift_records(
    gathered: Gathered,
    env: Mapping[str, str],
    *,
    at: str,
    run: str | None,
    concurrency: int,
) -> list[str]:
    """Record, beside each app's state, what this run saw of every app it refreshed here
    (merged shard results: their jobs recorded theirs), ``concurrency`` at a time (the git
    backend pushes the records that queue up meanwhile in one commit); a warning for each
    record that could not be written."""
    apps = {app.name: app for app in _desired(gathered)}
    records = []
    for doc in gathered.docs:
        app = apps.get(doc["app"])
        if app is not None:
            declared = [bot.userId for bot in app.bots]
            records.append((app, drift_record(doc, declared, at=at, run=run)))
    if not records:
        return []
    with ThreadPoolExecutor(min(concurrency, len(records)), "drift-record") as pool:
        failed = pool.map(lambda pair: _write_drift_record(pair[0], pair[1], env), records)
        return [warning for warning in failed if warning is not None]


def _write_drift_record(app: DesiredApp, record: DriftRecord, env: Mapping[str, str]) -> str | None:
    try:
        DriftRecord.from_data(record.data, where=f"app {app.name}")  # what readers accept
        backend_for(app, env=env).write_drift_record(record)
    except ProvisionerError as exc:
        return f"app {app.name}: what this drift run saw was not recorded: {_said(exc)}"
    return None


def _said(exc: ProvisionerError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


def _desired(gathered: Gathered) -> list[DesiredApp]:
    return [each.app for each in gathered.loaded if each.app is not None]
