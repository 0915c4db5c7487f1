"""The plans a `github plan` or `github drift` run reports: every loaded app planned here
(:func:`gather`, no lock, the same path as `provisioner plan`), or the results of the shard
jobs merged (:func:`merged_results`, the fan-in), with the apps that could not be planned.

Nothing here prints: the CLI loads the apps (masking every secret value before anything is
printed) and shows the plans and the failures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioner.apply.session import Planned, plan_apps
from provisioner.errors import ConfigError
from provisioner.github.comment import AppFailure
from provisioner.github.shards import merge_shard_results
from provisioner.plan import PlanDoc
from provisioner.workspace import LoadedApp


@dataclass(frozen=True)
class Gathered:
    """The plans a run reports: planned here, or merged from shard results (then ``loaded``
    is empty and ``head_sha`` is theirs, when they say)."""

    loaded: Sequence[LoadedApp]
    docs: list[PlanDoc]
    failures: list[AppFailure]
    head_sha: str | None = None

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
    return Gathered((), docs, list(merged.failures), merged.head_sha)
