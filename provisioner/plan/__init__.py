"""The plan core: desired × recorded × live → Plan. Pure: no clock, env, file or network I/O.

Modules: :mod:`~provisioner.plan.changes` (the values, their JSON views, the plan id),
:mod:`~provisioner.plan.make` (``make_plan``), :mod:`~provisioner.plan.diff` (the field
diff), :mod:`~provisioner.plan.canonical` (canonical forms), :mod:`~provisioner.plan.document`
(the document's TypedDicts), :mod:`~provisioner.plan.review` (plan files, reviewed ids).
The package imports no I/O module; only plan modules and the pure vocabulary (errors,
models, secrets, state.model).

CONTRACT (shared by plan, render and apply; keep these names and shapes):

- ``FieldDiff(path, old, new, sensitive)``: one changed field; ``path`` like
  ``integrations[dify_chatflow].callbackUrl``; for sensitive fields ``old``/``new`` hold
  fingerprints, never values, and renderers print ``(sensitive)``/``(sensitive, changed)``,
  or ``(sensitive, reference renamed, value unchanged)`` when only the ``${NAME}`` changed
  (``reference_renamed``; in the JSON view ``"reference_renamed": true``).
- ``Change(action, user_id, source, before, after, fields, protect, replacement)``:
  ``action`` in ``delete`` | ``create`` | ``adopt`` | ``update``; ``before`` is the recorded
  canonical spec (None for create/adopt), ``after`` the desired canonical spec to record after
  success (None for delete). Canonical specs hold secrets only as fingerprints.
  ``replacement`` pairs the delete of X with the create of Y when Y's manifest file is the one
  X was recorded from (its ``userId`` was changed): ``Replacement(old, new, fields)`` on both
  changes, ``fields`` the diff X's recorded spec -> Y's; apply still deletes, then creates.
- ``Drift(user_id, kind, fields)``: what changed on the server outside git (``changed`` or
  ``missing``), from a refresh.
- ``Plan``: ``app``, sorted ``changes`` (deletes, creates/adopts, updates; by user_id within),
  ``drift``, ``unmanaged`` (on the server, never recorded, not declared: reported, never
  deleted), ``blocked`` (reasons a safety rule blocks it), ``lineage``/``serial`` of the
  state it was made against (``last_run``/``last_plan``: the CI run and the plan id of its
  last write, when known); ``.data`` (canonical JSON view, ``format_version``; a
  :class:`PlanDataDoc`), ``.document`` (``data`` + ``id``; a :class:`PlanDoc`), ``.id``
  (sha256 of canonical ``data`` plus lineage and serial), ``.counts``, ``.is_empty``.
"""

from provisioner.plan.changes import (
    ACTION_ORDER,
    FORMAT_VERSION,
    Change,
    Drift,
    FieldDiff,
    Plan,
    Replacement,
    plan_id,
    source_file,
)
from provisioner.plan.diff import change_path, diff_specs
from provisioner.plan.document import (
    Action,
    ChangeDoc,
    CountsDoc,
    DriftDoc,
    FieldDoc,
    PlanDataDoc,
    PlanDoc,
    PlansDoc,
    PlanStateDoc,
    ReplacementDoc,
)
from provisioner.plan.make import make_plan, pair_replacements

__all__ = [
    "ACTION_ORDER",
    "FORMAT_VERSION",
    "Action",
    "Change",
    "ChangeDoc",
    "CountsDoc",
    "Drift",
    "DriftDoc",
    "FieldDiff",
    "FieldDoc",
    "Plan",
    "PlanDataDoc",
    "PlanDoc",
    "PlanStateDoc",
    "PlansDoc",
    "Replacement",
    "ReplacementDoc",
    "change_path",
    "diff_specs",
    "make_plan",
    "pair_replacements",
    "plan_id",
    "source_file",
]
