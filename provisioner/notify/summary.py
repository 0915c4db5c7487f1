"""What one notification says about one app: the event (drift, apply, failure), the counts,
the bots affected, the error, and where to look (the run, the pull request). Made from what
the commands already have — plan documents of a drift run, the apps that could not be
checked, an apply run — and nothing else. Pure.

One summary per app and run: an apply that changed some bots and failed on others is one
``failure`` with its counts, not two messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from provisioner.apply.run import ApplyRun
from provisioner.apply.session import Applied
from provisioner.apply.verdicts import Verdict
from provisioner.errors import ProvisionerError
from provisioner.models import NotifyEvent
from provisioner.plan.document import PlanDoc

PullKind = Literal["pull", "merge_request", "issue"]
"""What ``pull_number`` numbers: a GitHub pull request (or issue: GitHub shows both at one
address), a GitLab merge request (``!N``) or a GitLab issue (``#N``)."""
COUNT_KEYS = ("drifted", "unmanaged", "pending", "applied", "failed", "not_attempted", "refused")
"""Every count a summary may carry, in the order messages show them."""


@dataclass(frozen=True)
class Summary:
    event: NotifyEvent
    app: str
    counts: tuple[tuple[str, int], ...] = ()
    """``(key, n)`` for each key of :data:`COUNT_KEYS` with n > 0, in that order."""
    bots: tuple[str, ...] = ()
    """The userIds the event concerns, in plan order."""
    error: str | None = None
    run_url: str | None = None
    pull_number: int | None = None
    pull_url: str | None = None
    pull_kind: PullKind = "pull"

    def linked(
        self,
        run_url: str | None,
        pull_number: int | None = None,
        pull_url: str | None = None,
        pull_kind: PullKind = "pull",
    ) -> Summary:
        """This summary with where to look."""
        return replace(
            self, run_url=run_url, pull_number=pull_number, pull_url=pull_url, pull_kind=pull_kind
        )


def counted(**counts: int) -> tuple[tuple[str, int], ...]:
    """The non-zero ``counts`` in :data:`COUNT_KEYS` order."""
    return tuple((key, counts[key]) for key in COUNT_KEYS if counts.get(key))


def drift_summaries(docs: Sequence[PlanDoc], failures: Iterable[tuple[str, str]]) -> list[Summary]:
    """A ``drift`` summary for each app where something differs from git, a ``failure`` for
    each ``(app, message)`` that could not be checked; clean apps say nothing."""
    found = []
    for doc in docs:
        if not (doc["drift"] or doc["unmanaged"] or doc["changes"]):
            continue
        bots = [drift["user_id"] for drift in doc["drift"]] + list(doc["unmanaged"])
        bots += [change["user_id"] for change in doc["changes"]]
        counts = counted(
            drifted=len(doc["drift"]), unmanaged=len(doc["unmanaged"]), pending=len(doc["changes"])
        )
        found.append(Summary("drift", doc["app"], counts, tuple(dict.fromkeys(bots))))
    found += [Summary("failure", app, error=message) for app, message in failures]
    return found


def apply_summaries(run: ApplyRun) -> list[Summary]:
    """An ``apply`` summary for each app whose changes were all made, a ``failure`` for each
    app refused, blocked or failed (wholly or in part); an app with nothing to do says
    nothing."""
    applied = {each.app: each for each in run.applied}
    found = [_apply_summary(verdict, applied.get(name)) for name, verdict in run.verdicts.items()]
    return [summary for summary in found if summary is not None]


def _apply_summary(verdict: Verdict, applied: Applied | None) -> Summary | None:
    refused = dict(verdict.bots.refused) if verdict.bots is not None else {}
    if verdict.refusal is not None:
        return Summary("failure", verdict.name, error=verdict.refusal.message)
    if applied is not None and applied.error is not None:
        return Summary("failure", verdict.name, error=applied.error.message)
    result = applied.result if applied is not None else None
    if result is None or not result.results:
        if not refused:
            return None
        counts = counted(refused=len(refused))
        return Summary("failure", verdict.name, counts, tuple(refused), _first(refused))
    bots = tuple(dict.fromkeys([each.user_id for each in result.results] + list(refused)))
    counts = counted(**result.counts, refused=len(refused))
    if result.ok and not refused:
        return Summary("apply", verdict.name, counts, bots)
    errors = [each.error.message for each in result.results if each.error is not None]
    if result.persist_error is not None:
        errors.insert(0, result.persist_error.message)
    error = errors[0] if errors else _first(refused)
    return Summary("failure", verdict.name, counts, bots, error)


def _first(refused: Mapping[str, ProvisionerError]) -> str | None:
    return next((error.message for error in refused.values()), None)
