"""What was reviewed: the plan file that `plan --out` writes and `apply --plan` reads, and the
check that a fresh plan is the reviewed one.

A plan file is ``{"format_version": 1, "plans": [plan.document, ...]}``. Each plan carries its
id, which is the hash of its content (:func:`provisioner.plan.plan_id`): a file whose content
was edited after it was made is refused, whatever its ids say.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from provisioner.errors import PlanError
from provisioner.plan.changes import FORMAT_VERSION, Plan, plan_id
from provisioner.plan.document import PlanDataDoc, PlansDoc

MAX_PLAN_FILE_BYTES = 64 * 1024 * 1024
"""A plan file is refused past this size (a plan of 1,000 apps × 10 bots is ~10 MiB)."""


def plans_document(plans: Sequence[Plan]) -> PlansDoc:
    """The JSON document of ``plan --out``/``--format json``:
    ``{"format_version": 1, "plans": [plan.document, ...]}`` in app order."""
    return {"format_version": FORMAT_VERSION, "plans": [plan.document for plan in plans]}


def read_plan_file(path: Path) -> dict[str, str]:
    """The reviewed plan ids in a ``plan --out`` file: app name -> plan id. PlanError when
    the file cannot be read, is not a plan file, or a plan's content does not match its id."""
    data = _load(path)
    plans = data.get("plans") if isinstance(data, dict) else None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION or not isinstance(plans, list):
        raise PlanError(
            f"{path}: not a plan file of format_version {FORMAT_VERSION}",
            hint="re-run `provisioner plan --out FILE` with this provisioner",
        )
    ids: dict[str, str] = {}
    for number, entry in enumerate(plans, start=1):
        app, reviewed = _entry_id(path, number, entry)
        if app in ids:
            raise PlanError(
                f"{path}: app {app} has two plans (the second is plan {number})",
                hint="pass the file `provisioner plan --out FILE` wrote, unedited",
            )
        ids[app] = reviewed
    return ids


def check_reviewed(
    plan: Plan, reviewed: Mapping[str, str], source: str | Path | None
) -> PlanError | None:
    """Why ``plan`` may not be applied under ``reviewed`` (app name → plan id, read from
    ``source`` — a plan file, a pull request's plan comment — when named), or None when its
    id is the reviewed one."""
    where = f" in {source}" if source is not None else ""
    expected = reviewed.get(plan.app)
    if expected is None:
        return PlanError(
            f"no reviewed plan id for app {plan.app}{where}",
            hint="run `provisioner plan` for this app, review it, and pass its plan id",
        )
    if expected != plan.id:
        return PlanError(
            f"the plan for app {plan.app} is not the reviewed one: reviewed plan id"
            f" {expected}, current plan id {plan.id}",
            hint="the manifests, the state or the live bots changed since the plan was made;"
            " re-run `provisioner plan`, review it, and apply the new plan",
        )
    return None


def _load(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise PlanError(f"no plan file {path}", hint="pass the file `plan --out` wrote") from exc
    except OSError as exc:
        raise PlanError(
            f"{path}: cannot read the plan file: {exc.strerror or type(exc).__name__}",
            hint="pass the file `provisioner plan --out FILE` wrote",
        ) from exc
    if len(raw) > MAX_PLAN_FILE_BYTES:
        raise PlanError(
            f"{path}: larger than {MAX_PLAN_FILE_BYTES // (1024 * 1024)} MiB; not a plan file",
            hint="pass the file `provisioner plan --out FILE` wrote",
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PlanError(
            f"{path}: not a plan file (cannot read it as JSON)",
            hint="pass the file `provisioner plan --out FILE` wrote",
        ) from exc


def _entry_id(path: Path, number: int, entry: object) -> tuple[str, str]:
    """The app and id of one plan of the file, once its content is checked against its id."""
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("app"), str)
        and isinstance(entry.get("id"), str)
    ):
        raise PlanError(f"{path}: plan {number} has no app or id", hint="re-run plan --out")
    app, reviewed = entry["app"], entry["id"]
    try:  # an entry of any shape: plan_id raises on what is not a plan document
        actual = plan_id(cast(PlanDataDoc, entry))
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError):
        actual = None
    if actual != reviewed:
        raise PlanError(
            f"{path}: the plan for app {app} does not match its id {reviewed}: the file was"
            " edited after `provisioner plan --out` wrote it",
            hint="re-run `provisioner plan --out FILE`, review that plan, and apply it unedited",
        )
    return app, reviewed
