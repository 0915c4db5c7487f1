"""The plan core: desired × recorded × live → Plan. Pure: no clock, env, file or network I/O.

CONTRACT (shared by plan, render and apply; keep these names and shapes):

- ``FieldDiff(path, old, new, sensitive)``: one changed field; ``path`` like
  ``integrations[dify_chatflow].callbackUrl``; for sensitive fields ``old``/``new`` hold
  fingerprints, never values, and renderers print ``(sensitive)``/``(sensitive, changed)``.
- ``Change(action, user_id, source, before, after, fields, protect)``:
  ``action`` in ``delete`` | ``create`` | ``adopt`` | ``update``; ``before`` is the recorded
  canonical spec (None for create/adopt), ``after`` the desired canonical spec to record after
  success (None for delete). Canonical specs hold secrets only as fingerprints.
- ``Drift(user_id, kind, fields)``: what changed on the server outside git (``changed`` or
  ``missing``), from a refresh.
- ``Plan``: ``app``, sorted ``changes`` (deletes, creates/adopts, updates; by user_id within),
  ``drift``, ``unmanaged`` (on the server, never recorded, not declared: reported, never
  deleted), ``blocked`` (reasons a safety rule blocks it), ``lineage``/``serial`` of the
  state it was made against; ``.data`` (canonical JSON view, ``format_version``), ``.id``
  (sha256 of canonical ``data`` plus lineage and serial), ``.counts``, ``.is_empty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Action = Literal["delete", "create", "adopt", "update"]
ACTION_ORDER: dict[str, int] = {"delete": 0, "create": 1, "adopt": 1, "update": 2}


@dataclass(frozen=True)
class FieldDiff:
    path: str
    old: Any
    new: Any
    sensitive: bool = False


@dataclass(frozen=True)
class Change:
    action: Action
    user_id: str
    source: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[FieldDiff, ...] = ()
    protect: bool = False

    @property
    def sort_key(self) -> tuple[int, str]:
        return ACTION_ORDER[self.action], self.user_id


@dataclass(frozen=True)
class Drift:
    user_id: str
    kind: Literal["changed", "missing"]
    fields: tuple[FieldDiff, ...] = ()
