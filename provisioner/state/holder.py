"""Who is taking a lock: host, pid, user, command, start time and the CI run, if any.

The same record is kept by every backend (a sidecar JSON for ``file``, a file on the state
branch for ``git``, a row for ``postgres``), so a refused run always names the real holder.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from provisioner.state.model import LockHolder

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def utc_now() -> str:
    """Now, as ISO 8601 UTC to the second (``2026-01-02T03:04:05Z``)."""
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_utc(text: str | None) -> datetime | None:
    """The moment written by :func:`format_utc`; None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def boot_id() -> str | None:
    """This machine's boot id (Linux); None elsewhere."""
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def ci_run_url(env: Mapping[str, str]) -> str | None:
    """The CI run of this process: on GitHub Actions ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/
    actions/runs/$GITHUB_RUN_ID``, on GitLab CI the job, ``$CI_JOB_URL`` (None outside CI)."""
    job = env.get("CI_JOB_URL")
    if job and env.get("GITLAB_CI") == "true":
        return job
    server, repository, run = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    )
    if not (server and repository and run):
        return None
    url = f"{server.rstrip('/')}/{repository}/actions/runs/{run}"
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    return f"{url}/attempts/{attempt}" if attempt and attempt != "1" else url


def current_holder(
    command: str,
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    started: str | None = None,
    expires: str | None = None,
) -> LockHolder:
    """The record of this process taking ``app``'s lock for ``command``."""
    return LockHolder(
        host=socket.gethostname(),
        pid=os.getpid(),
        user=current_user(),
        command=command,
        started=started or utc_now(),
        ci_run=ci_run_url(os.environ if env is None else env),
        app=app,
        boot_id=boot_id(),
        expires=expires,
        token=secrets.token_hex(8),
    )


def is_gone(holder: LockHolder) -> bool:
    """True when ``holder`` ran on this very machine (same host and boot) and its process
    no longer exists: its lock can be taken at once, without waiting for a lease."""
    if holder.host != socket.gethostname() or holder.boot_id is None:
        return False
    if holder.boot_id != boot_id():
        return False
    if holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
