"""Backends for the state tests, built the same way in the test process and in the helper
processes that hold a lock or crash in the middle of a write.

    python -m tests.state_support hold KIND CONFIG APP      # lock, print "locked", wait
    python -m tests.state_support crash KIND CONFIG APP STEP  # a write dying at STEP

CONFIG is JSON: ``{"path": ...}`` (file), ``{"dir": clone}`` (git), ``{"dsn", "schema"}``
(postgres), ``{"api", "project", "token"}`` (gitlab: a tests/gitlab_state_fake.py server).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from provisioner.state import RecordedApp, RecordedBot, StateBackend
from provisioner.state.file.backend import FileBackend
from provisioner.state.git.backend import GitBackend
from provisioner.state.git.branch import StateBranch
from provisioner.state.git.cli import GitRepository
from provisioner.state.gitlab.api import GitLabStateApi
from provisioner.state.gitlab.backend import GitLabBackend

OPENED: list[Any] = []
"""The postgres stores made here (:func:`close_opened` closes their connections)."""


def close_opened() -> None:
    from provisioner.state.postgres.backend import close_stores

    while OPENED:
        OPENED.pop().close()
    close_stores()


def make_backend(kind: str, config: dict[str, Any], app: str = "demo") -> StateBackend:
    """A new backend (for git and postgres: with its own branch client or connections, as
    another process would have)."""
    if kind == "file":
        return FileBackend(Path(config["path"]), app)
    if kind == "git":
        repo = GitRepository.discover(Path(config["dir"]))
        branch = StateBranch(repo, "origin", config.get("branch", "provisioner-state"))
        return GitBackend(app, branch, base_dir=Path(config["dir"]))
    if kind == "gitlab":
        api = GitLabStateApi(config["api"], config["project"], config["token"], "access")
        directory = Path(config.get("dir", "."))
        return GitLabBackend(app, api, config.get("name", app), base_dir=directory, pipeline=None)
    from provisioner.state.postgres.backend import PostgresBackend
    from provisioner.state.postgres.store import PostgresStore

    schema = config["schema"]
    store = PostgresStore(
        config["dsn"], schema, where=f"postgres schema {schema}", application_name="test"
    )
    OPENED.append(store)
    return PostgresBackend(app, store, base_dir=Path(config.get("dir", ".")))


def bot(user_id: str) -> RecordedBot:
    return RecordedBot({"userId": user_id, "name": user_id.title()})


def next_state(state: RecordedApp, user_id: str) -> RecordedApp:
    return state.with_bot(user_id, bot(user_id))


CRASH_STEPS: dict[str, list[str]] = {
    "file": [
        "provisioner.state.atomic.os.fsync",
        "provisioner.state.atomic.exchange",
        "provisioner.state.atomic.AtomicFile._fsync_directory",
    ],
    "git": [
        "provisioner.state.git.cli.GitRepository.commit",
        "provisioner.state.git.cli.GitRepository.push",
        "provisioner.state.git.cli.GitRepository.update_ref",
    ],
    "postgres": [
        "provisioner.state.postgres.backend.render_state",
        "provisioner.state.postgres.backend.PostgresBackend._store_row",
    ],
    "gitlab": [
        "provisioner.state.gitlab.backend.render_state",
        "provisioner.state.gitlab.api.GitLabStateApi.post_state",
    ],
}
"""Where a write can die, per backend: the process exits the moment it reaches the step
(``before``), or right after the step returns (``after``)."""


def _crash_at(step: str, when: str) -> None:
    module_name, _, attribute = step.rpartition(".")
    owner: Any
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:
        parent, _, class_name = module_name.rpartition(".")
        owner = getattr(importlib.import_module(parent), class_name)
    real = getattr(owner, attribute)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            os._exit(17)
        real(*args, **kwargs)
        os._exit(17)

    setattr(owner, attribute, dying)


def main(argv: list[str]) -> None:
    action, kind, config, app = argv[:4]
    backend = make_backend(kind, json.loads(config), app)
    if action == "hold":
        with backend.lock("provisioner apply"):
            sys.stdout.write("locked\n")
            sys.stdout.flush()
            sys.stdin.readline()
        return
    step, when = argv[4], argv[5]
    with backend.lock("provisioner apply"):
        state = backend.read()
        _crash_at(step, when)
        backend.write(next_state(state, "crash-bot"))


if __name__ == "__main__":
    main(sys.argv[1:])
