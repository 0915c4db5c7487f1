"""The lock ID that carries the holder: GitLab keeps only a lock's ID, the username of the
token that took it and the time, and returns only those three to a refused request (its
``Info``, ``Who`` and ``Operation`` come from the refused request itself). So provisioner's
lock ID is the holder's record, as compact JSON of at most 255 characters (GitLab's limit)::

    {"by":"provisioner","t":"<token>","p":4242,"h":"runner-7","u":"root",
     "c":"provisioner apply","b":"<boot id>","r":"https://gitlab.example.com/g/p/-/jobs/77",
     "pl":"https://gitlab.example.com/g/p/-/pipelines/9"}

Host, user and command are cut to 40 characters; what still does not fit gives way in this
order: the pipeline link, the boot id (then a dead holder on the same machine is no longer
recognised), host and user cut to 20 and 16 characters, the job link. A lock ID that is
not one of these (Terraform's UUIDs, another tool) is a holder provisioner cannot name: it is
shown as its ID and GitLab username.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.state.model import LockHolder

MAX_LOCK_ID = 255
MARK = "provisioner"


@dataclass(frozen=True)
class GitLabHolder:
    """A lock holder as GitLab shows it: the record in its ID (None when the ID is not
    provisioner's), GitLab's username and lock time, the pipeline link when it fitted."""

    lock_id: str
    holder: LockHolder | None
    who: str
    pipeline: str | None = None

    def describe(self) -> str:
        """One line for messages: the holder and its job and pipeline, else the raw lock."""
        if self.holder is None:
            return f"lock {self.lock_id!r} of GitLab user {self.who}"
        text = self.holder.describe()
        text = f"{text}, pipeline {self.pipeline}" if self.pipeline else text
        return f"{text}, as GitLab user {self.who}"


def encode(holder: LockHolder, pipeline: str | None) -> str:
    """The lock ID of ``holder`` (see the module docstring)."""
    record: dict[str, object] = {
        "by": MARK,
        "t": holder.token or "",
        "p": holder.pid,
        "h": holder.host[:40],
        "u": holder.user[:40],
        "c": holder.command[:40],
    }
    for key, value in (("b", holder.boot_id), ("r", holder.ci_run), ("pl", pipeline)):
        if value:
            record[key] = value
    for shorten in _SHORTENINGS:
        if len(_dumps(record)) <= MAX_LOCK_ID:
            break
        shorten(record)
    return _dumps(record)


def _cut_names(record: dict[str, object]) -> None:
    record["h"] = str(record["h"])[:20]
    record["u"] = str(record["u"])[:16]


_SHORTENINGS: tuple[Callable[[dict[str, object]], object], ...] = (
    lambda record: record.pop("pl", None),
    lambda record: record.pop("b", None),
    _cut_names,
    lambda record: record.pop("r", None),
)
"""What gives way, in turn, until the ID fits (see the module docstring)."""


def decode(lock_id: str, who: str, created: str, app: str) -> GitLabHolder:
    """The holder in GitLab's lock answer (``who`` and ``created`` as GitLab gives them).
    Server text: every string is cut to 255 characters and loses its control characters."""
    who, created = _clean(who), _clean(created)
    try:
        record = json.loads(lock_id)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("by") != MARK:
        return GitLabHolder(_clean(lock_id), None, who)
    pid = record.get("p")
    holder = LockHolder(
        host=_clean(str(record.get("h", ""))),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else 0,
        user=_clean(str(record.get("u", ""))) or who,
        command=_clean(str(record.get("c", ""))),
        started=created,
        ci_run=_text(record.get("r")),
        app=app,
        boot_id=_text(record.get("b")),
        token=_text(record.get("t")),
    )
    return GitLabHolder(lock_id, holder, who, _text(record.get("pl")))


def _text(value: object) -> str | None:
    return _clean(value) if isinstance(value, str) and value else None


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_LOCK_ID])


def _dumps(record: dict[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
