"""Merging the JSON results of several shard jobs (``--shard I/N``, see
:func:`provisioner.workspace.shard_of`) into one comment or issue.

A shard job writes ``{"format_version": 1, "plans": [Plan.document, ...], "failures":
[{"app", "message", "hint"}], "head_sha": "...", "seen": {app: drift record or null}}``
(``failures``, ``head_sha`` and ``seen`` may be left out: the file of ``provisioner plan
--format json`` is a valid result). One fan-in job merges them and makes the one comment
or issue: a constant number of GitHub writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict, cast

from provisioner.errors import ConfigError, StateError
from provisioner.forge.comment import AppFailure
from provisioner.plan.document import PlanDoc
from provisioner.state.drift_record import DriftRecord, DriftRecordDoc

RESULT_FORMAT_VERSION = 1


class FailureDoc(TypedDict):
    app: str
    message: str
    hint: str | None


class ShardResultDoc(TypedDict):
    """What a shard job writes. One read back is checked part by part: the file of
    ``provisioner plan --format json`` (no ``failures``, no ``head_sha``) is a result too."""

    format_version: int
    plans: list[PlanDoc]
    failures: list[FailureDoc]
    head_sha: NotRequired[str]
    seen: NotRequired[dict[str, DriftRecordDoc | None]]
    """What the last drift run saw of each app planned (`github plan`; None: nothing)."""


@dataclass(frozen=True)
class ShardResults:
    """Plan documents and failures of every shard, sorted by app, and the head SHA."""

    plans: tuple[PlanDoc, ...]
    failures: tuple[AppFailure, ...]
    head_sha: str | None
    seen: Mapping[str, DriftRecord | None] = field(default_factory=dict)


def shard_result_json(
    docs: Sequence[PlanDoc],
    failures: Sequence[AppFailure] = (),
    head_sha: str | None = None,
    seen: Mapping[str, DriftRecord | None] | None = None,
) -> str:
    """What a shard job writes for the fan-in job: compact JSON (sorted keys, no indentation,
    trailing newline). It carries what the fan-in renders and reviews (the plan
    documents, failures, head SHA and drift records), never rendered text: an unchanged app
    costs a few hundred bytes, so a 1,000-app run's files stay small enough to upload."""
    document: ShardResultDoc = {
        "format_version": RESULT_FORMAT_VERSION,
        "plans": list(docs),
        "failures": [
            {"app": failure.app, "message": failure.message, "hint": failure.hint}
            for failure in failures
        ],
    }
    if head_sha is not None:
        document["head_sha"] = head_sha
    if seen:
        document["seen"] = {
            app: record.data if record is not None else None for app, record in sorted(seen.items())
        }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def merge_shard_results(results: Mapping[str, str]) -> ShardResults:
    """Merge shard result files (name -> JSON text); ConfigError, naming the files, for a
    file that is not a result, an app in two files, or results of different commits."""
    plans: dict[str, tuple[str, PlanDoc]] = {}
    failures: dict[str, tuple[str, AppFailure]] = {}
    shas: dict[str, str] = {}
    seen: dict[str, DriftRecord | None] = {}
    for name, text in results.items():
        document = _result_document(name, text)
        seen.update(_seen(name, document))
        if document.get("head_sha") is not None:
            shas[name] = str(document["head_sha"])
        for doc in _plans(name, document):
            _claim(doc["app"], name, plans, failures)
            plans[doc["app"]] = (name, doc)
        for failure in _failures(name, document):
            _claim(failure.app, name, plans, failures)
            failures[failure.app] = (name, failure)
    if len(set(shas.values())) > 1:
        listed = ", ".join(f"{name} {sha[:12]}" for name, sha in sorted(shas.items()))
        raise ConfigError(
            f"the shard results are for different commits: {listed}",
            hint="merge only the results of this run's shard jobs (download them by run id)",
        )
    return ShardResults(
        plans=tuple(plans[app][1] for app in sorted(plans)),
        failures=tuple(failures[app][1] for app in sorted(failures)),
        head_sha=next(iter(shas.values()), None),
        seen=seen,
    )


def _claim(
    app: str,
    name: str,
    plans: Mapping[str, tuple[str, object]],
    failures: Mapping[str, tuple[str, object]],
) -> None:
    earlier = plans.get(app) or failures.get(app)
    if earlier is not None:
        raise ConfigError(
            f"app {app} is in two shard results: {earlier[0]} and {name}",
            hint="give every shard job the same N in --shard I/N, and merge each result once",
        )


_RESULT_HINT = "pass the files written by the shard jobs (provisioner plan --format json)"


def _result_document(name: str, text: str) -> dict[str, Any]:
    """The JSON object of a result file of format_version 1 (its plans and failures are
    checked by :func:`_plans` and :func:`_failures`)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ConfigError(f"shard result {name} is not JSON", hint=_RESULT_HINT) from None
    if not isinstance(document, dict) or document.get("format_version") != RESULT_FORMAT_VERSION:
        raise ConfigError(
            f"shard result {name} is not a plan result of format_version 1", hint=_RESULT_HINT
        )
    return document


def _plans(name: str, document: Mapping[str, Any]) -> list[PlanDoc]:
    """The plan documents of a result, once each looks like one (app, id, changes, state)."""
    plans = document.get("plans")
    if not isinstance(plans, list) or not all(_is_plan(doc) for doc in plans):
        raise ConfigError(f"shard result {name} has no valid plans list", hint=_RESULT_HINT)
    return cast(list[PlanDoc], plans)


def _is_plan(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("app"), str)
        and isinstance(doc.get("id"), str)
        and isinstance(doc.get("changes"), list)
        and isinstance(doc.get("state"), dict)
    )


def _seen(name: str, document: Mapping[str, Any]) -> dict[str, DriftRecord | None]:
    found = document.get("seen") or {}
    if not isinstance(found, dict):
        raise ConfigError(f"shard result {name}: 'seen' is not a JSON object", hint=_RESULT_HINT)
    try:
        return {
            app: None if data is None else DriftRecord.from_data(data, where=f"seen.{app}")
            for app, data in found.items()
        }
    except StateError as exc:
        raise ConfigError(f"shard result {name}: {exc.message}", hint=_RESULT_HINT) from None


def _failures(name: str, document: Mapping[str, Any]) -> list[AppFailure]:
    found = []
    for item in document.get("failures") or []:
        if not (isinstance(item, dict) and isinstance(item.get("app"), str)):
            raise ConfigError(
                f"shard result {name} has a failure without an app name",
                hint='each failure is {"app": ..., "message": ..., "hint": ...}',
            )
        hint = item.get("hint")
        found.append(AppFailure(item["app"], str(item.get("message", "")), hint and str(hint)))
    return found
