"""The plan document's shape: ``Plan.data`` and ``Plan.document`` as TypedDicts (types, and
the zero counts).

What travels between plan, render, review and the GitHub modules (and is written to plan
files, shard results and ``--format json``). Canonical specs (``before``/``after``) stay
``dict[str, Any]``: they are the JSON form of a bot, owned by :mod:`provisioner.plan.canonical`.
A document read from a file is ``Any`` until it is checked; cast it only after that.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Action = Literal["delete", "create", "adopt", "update"]
DriftKind = Literal["changed", "missing"]
CountKey = Literal["create", "adopt", "update", "delete", "replace", "drift", "unmanaged"]
COUNT_KEYS: tuple[CountKey, ...] = (
    "create",
    "adopt",
    "update",
    "delete",
    "replace",
    "drift",
    "unmanaged",
)
"""The keys of :class:`CountsDoc`, in the order ``Plan.counts`` holds them."""


class FieldDoc(TypedDict):
    """One changed field (``FieldDiff``): ``old``/``new`` are JSON values, ``None`` when
    absent; sensitive ones are markers holding fingerprints, never values."""

    path: str
    old: Any
    new: Any
    sensitive: bool
    reference_renamed: NotRequired[bool]
    """Present (true) only when the ``${NAME}`` reference changed and the value did not."""


class ReplacementDoc(TypedDict):
    old: str
    new: str
    fields: list[FieldDoc]


class ChangeDoc(TypedDict):
    action: Action
    user_id: str
    source: str | None
    protect: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[FieldDoc]
    replacement: ReplacementDoc | None
    digest: str | None
    """The desired spec's digest (a declared bot), None for a delete: what a review records."""


class DriftDoc(TypedDict):
    user_id: str
    kind: DriftKind
    fields: list[FieldDoc]


class PlanStateDoc(TypedDict):
    """The state a plan was made against (``lineage`` None: never written)."""

    lineage: str | None
    serial: int
    last_run: str | None
    last_plan: str | None


class CountsDoc(TypedDict):
    create: int
    adopt: int
    update: int
    delete: int
    replace: int
    drift: int
    unmanaged: int


def zero_counts() -> CountsDoc:
    """Every count 0, in the order of :data:`COUNT_KEYS`."""
    return CountsDoc(create=0, adopt=0, update=0, delete=0, replace=0, drift=0, unmanaged=0)


class PlanDataDoc(TypedDict):
    """``Plan.data``: the canonical JSON view, the content of the plan id."""

    format_version: int
    app: str
    state: PlanStateDoc
    counts: CountsDoc
    has_changes: bool
    blocked: list[str]
    changes: list[ChangeDoc]
    drift: list[DriftDoc]
    unmanaged: list[str]
    unchecked: list[str]


class PlanDoc(PlanDataDoc):
    """``Plan.document``: the data plus its ``id``, what every output and file carries."""

    id: str


class PlansDoc(TypedDict):
    """A plan file (``plan --out``, ``--format json``): the documents in app order."""

    format_version: int
    plans: list[PlanDoc]
