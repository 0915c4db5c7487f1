"""The GitHub Actions runner environment: variables, event payload, step summary, outputs,
masks, ``stop-commands`` and annotations.

Pure functions return the text of workflow commands (the CLI prints it); the small writers
take the paths they append to (``$GITHUB_STEP_SUMMARY``, ``$GITHUB_OUTPUT``), so all of it
is testable without a runner. Escaping follows actions/toolkit ``command.ts``: data ``%``,
CR, LF; properties also ``:`` and ``,`` (shared with :mod:`provisioner.render.diagnostics`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError
from provisioner.github.client import Repo
from provisioner.plan.document import PlanDoc
from provisioner.render.diagnostics import escape_data, escape_property
from provisioner.render.markdown import cut_markdown
from provisioner.render.texts import DEFAULT_LANG, tr

SUMMARY_LIMIT = 1024 * 1024
"""GitHub's limit for one step's summary, in bytes; past it the summary is not shown."""
MIN_MASK_LENGTH = 6
"""Shorter values are never masked: masking ``on`` or ``1`` would shred the whole log."""
SUMMARY_NOTE = tr(DEFAULT_LANG, "summary.cut")
_WHERE = "run this in a GitHub Actions job (the runner sets it), or export it"


# --- the context --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionsContext:
    """What the runner says about this run. ``token`` never appears in ``repr``."""

    repository: Repo
    api_url: str
    server_url: str
    run_id: str
    sha: str
    event_name: str
    event_path: Path | None
    step_summary: Path | None
    output: Path | None
    token: str = field(repr=False)

    @property
    def run_url(self) -> str:
        """The web page of this workflow run."""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


_REQUIRED = {
    "GITHUB_REPOSITORY": "e.g. GITHUB_REPOSITORY=octo-org/bots",
    "GITHUB_API_URL": "e.g. GITHUB_API_URL=https://api.github.com",
    "GITHUB_SERVER_URL": "e.g. GITHUB_SERVER_URL=https://github.com",
    "GITHUB_RUN_ID": "the id of the workflow run, for links",
    "GITHUB_SHA": "the commit the run is for",
}


def read_context(env: Mapping[str, str], *, need_token: bool = True) -> ActionsContext:
    """The :class:`ActionsContext` from ``env``; ConfigError naming a missing variable."""
    for name, example in _REQUIRED.items():
        if not env.get(name):
            raise ConfigError(f"{name} is not set", hint=f"{_WHERE} ({example})")
    token = env.get("GITHUB_TOKEN", "")
    if need_token and not token:
        raise ConfigError(
            "GITHUB_TOKEN is not set",
            hint="pass the workflow's token in the step's environment: "
            "env: {GITHUB_TOKEN: ${{ github.token }}} (the provisioner Action does this)",
        )
    for name in ("GITHUB_API_URL", "GITHUB_SERVER_URL"):
        if not env[name].startswith(("https://", "http://")):
            raise ConfigError(
                f"{name} is not an http(s) URL: {env[name]!r}", hint=f"{_WHERE} ({_REQUIRED[name]})"
            )
    return ActionsContext(
        repository=Repo.parse(env["GITHUB_REPOSITORY"]),
        api_url=env["GITHUB_API_URL"].rstrip("/"),
        server_url=env["GITHUB_SERVER_URL"].rstrip("/"),
        run_id=env["GITHUB_RUN_ID"],
        sha=env["GITHUB_SHA"],
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        event_path=_optional_path(env, "GITHUB_EVENT_PATH"),
        step_summary=_optional_path(env, "GITHUB_STEP_SUMMARY"),
        output=_optional_path(env, "GITHUB_OUTPUT"),
        token=token,
    )


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value) if value else None


# --- the event payload --------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestEvent:
    """The pull request of a ``pull_request`` event."""

    number: int
    head_sha: str
    head_repo: str | None
    base_repo: str

    @property
    def is_from_fork(self) -> bool:
        """A fork's pull request gets a read-only token and no secrets: no comment."""
        return self.head_repo is None or self.head_repo.lower() != self.base_repo.lower()


def read_pull_request_event(path: Path | None) -> PullRequestEvent:
    """The pull request in the event payload at ``path`` (``GITHUB_EVENT_PATH``)."""
    payload = _event_payload(path)
    pull = payload.get("pull_request")
    try:
        assert isinstance(pull, dict)
        head, base = pull["head"], pull["base"]
        number = pull["number"]
        assert isinstance(number, int) and not isinstance(number, bool)
        return PullRequestEvent(
            number=number,
            head_sha=str(head["sha"]),
            head_repo=(head.get("repo") or {}).get("full_name"),
            base_repo=str(base["repo"]["full_name"]),
        )
    except (AssertionError, KeyError, TypeError, AttributeError):
        raise ConfigError(
            f"the event payload {path} holds no pull request",
            hint="run `github plan` from a workflow triggered by `on: pull_request`",
        ) from None


def _event_payload(path: Path | None) -> dict[str, Any]:
    if path is None:
        raise ConfigError("GITHUB_EVENT_PATH is not set", hint=_WHERE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the event payload {path}: {exc.strerror or exc}", hint=_WHERE
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"the event payload {path} is not JSON", hint="GITHUB_EVENT_PATH must be the runner's"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the event payload {path} is not a JSON object", hint=_WHERE)
    return data


# --- step summary and outputs -------------------------------------------------------------


def fit_summary(
    text: str, *, used: int = 0, limit: int = SUMMARY_LIMIT, note: str = SUMMARY_NOTE
) -> str:
    """``text`` cut (whole lines, fences and ``<details>`` closed, ``note`` added) so that
    ``used`` bytes already in the summary plus it stay within ``limit`` bytes."""
    return cut_markdown(text, max(0, limit - used), note, size=_utf8_size)


def append_step_summary(path: Path, text: str, *, note: str = SUMMARY_NOTE) -> None:
    """Append ``text`` to the step summary at ``path``, within GitHub's 1 MiB per step
    (``note``: what a cut summary ends with)."""
    used = path.stat().st_size if path.exists() else 0
    fitted = fit_summary(text, used=used, note=note)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(fitted if fitted.endswith("\n") else fitted + "\n")


def output_command(name: str, value: str, *, delimiter: str | None = None) -> str:
    """One ``$GITHUB_OUTPUT`` entry, always in the heredoc form with a random delimiter
    (as actions/toolkit writes it), so a value can never start another output."""
    if not name or any(char in name for char in "\r\n=<") or name != name.strip():
        raise ConfigError(f"{name!r} cannot name a step output", hint="use letters, -, _")
    marker = delimiter or f"ghadelimiter_{secrets.token_hex(16)}"
    if marker in name or marker in value:
        raise ConfigError("the output delimiter occurs in the value", hint="try again")
    return f"{name}<<{marker}\n{value}\n{marker}\n"


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append every output to ``$GITHUB_OUTPUT`` at ``path``."""
    text = "".join(output_command(name, value) for name, value in outputs.items())
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def plan_outputs(docs: Sequence[PlanDoc]) -> dict[str, str]:
    """The Action's outputs for plan documents: ``changes`` and ``blocked`` (``true`` /
    ``false``) and ``plan-ids`` (a JSON object, app name -> plan id)."""
    return {
        "changes": _flag(any(doc["has_changes"] for doc in docs)),
        "blocked": _flag(any(doc["blocked"] for doc in docs)),
        "plan-ids": json.dumps(
            {doc["app"]: doc["id"] for doc in docs}, sort_keys=True, separators=(",", ":")
        ),
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


# --- masks, stop-commands, annotations ----------------------------------------------------


def mask_commands(values: Iterable[str]) -> str:
    """``::add-mask::`` lines registering every value (and each line of a multi-line one)
    of at least :data:`MIN_MASK_LENGTH` characters; print them before anything else."""
    lines: list[str] = []
    seen: set[str] = set()
    for value in values:
        for part in (value, *value.splitlines()):
            part = part.strip("\r")
            if len(part) >= MIN_MASK_LENGTH and part not in seen:
                seen.add(part)
                lines.append(f"::add-mask::{escape_data(part)}\n")
    return "".join(lines)


def untrusted_block(text: str, *, token: str | None = None) -> str:
    """``text`` between ``::stop-commands::TOKEN`` and ``::TOKEN::``: nothing in it (a
    manifest, a plan) is taken as a workflow command. ``token`` is random by default."""
    chosen = token or _fresh_token(text)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"::stop-commands::{chosen}\n{body}::{chosen}::\n"


@contextmanager
def stop_commands(emit: Callable[[str], None]) -> Iterator[str]:
    """Emit ``::stop-commands::TOKEN`` now and ``::TOKEN::`` on leaving (even on error);
    what is emitted in between cannot issue workflow commands. Yields the token."""
    token = secrets.token_hex(16)
    emit(f"::stop-commands::{token}\n")
    try:
        yield token
    finally:
        emit(f"::{token}::\n")


def _fresh_token(text: str) -> str:
    while True:
        token = secrets.token_hex(16)
        if token not in text:
            return token


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
    end_line: int | None = None,
    end_column: int | None = None,
    title: str | None = None,
) -> str:
    """One ``::error``/``::warning``/``::notice`` workflow command, escaped."""
    if level not in ("error", "warning", "notice"):
        raise ConfigError(f"{level!r} is not an annotation level", hint="error, warning, notice")
    given = {
        "file": file,
        "line": line,
        "endLine": end_line,
        "col": col,
        "endColumn": end_column,
        "title": title,
    }
    properties = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in given.items() if value is not None
    )
    head = f"::{level} {properties}" if properties else f"::{level}"
    return f"{head}::{escape_data(message)}\n"
