"""What an apply reports: one ChangeResult per change, one ApplyResult per app. Pure values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from provisioner.errors import ApiError, ConflictError, ProvisionerError, TransportError

Outcome = Literal["applied", "failed", "not_attempted"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "failed", "not_attempted")


@dataclass(frozen=True)
class ChangeResult:
    """What happened to one change."""

    action: str
    user_id: str
    outcome: Outcome
    error: ProvisionerError | None = None
    note: str | None = None
    """How it was settled when not by the plain call, e.g. "settled by reading back"."""

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "action": self.action,
            "userId": self.user_id,
            "outcome": self.outcome,
        }
        if self.note:
            data["note"] = self.note
        if self.error is not None:
            data["error"] = error_data(self.error)
        return data


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of applying one app's plan: one ChangeResult per change, in plan order.

    ``persist_error`` is set when the state could not be persisted where it must go (a
    shared backend): the calls it lists as applied were made and are kept locally, and the
    error's hint says how to finish the job.
    """

    app: str
    plan_id: str
    results: tuple[ChangeResult, ...]
    interrupted: bool = False
    persist_error: ProvisionerError | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Every change applied, and the state persisted."""
        return self.persist_error is None and all(
            result.outcome == "applied" for result in self.results
        )

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "app": self.app,
            "planId": self.plan_id,
            "interrupted": self.interrupted,
            "counts": self.counts,
            "changes": [result.data for result in self.results],
        }
        if self.persist_error is not None:
            data["persistError"] = error_data(self.persist_error)
        return data


def error_data(error: ProvisionerError) -> dict[str, Any]:
    """The reportable facts of an error: never a request body, so never a secret."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": error.message}
    if isinstance(error, ApiError):
        data.update(
            endpoint=error.endpoint,
            httpStatus=error.http_status,
            code=error.code,
            errorMessage=error.error_message,
            requestId=error.request_id,
        )
    elif isinstance(error, TransportError | ConflictError):
        data["endpoint"] = error.endpoint
    if error.hint:
        data["hint"] = error.hint
    return data
