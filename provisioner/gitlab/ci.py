"""The GitLab CI runner: its predefined variables (``CI_*``), the token from
``PROVISIONER_GITLAB_TOKEN`` only, and what a job writes for GitLab: collapsible log
sections, the ``plan.md`` artifact, a dotenv report (outputs for later jobs) and the
Terraform report the merge request widget reads. Pure but for the small writers, which take
the paths they write to.

GitLab has no runtime masking (no ``::add-mask::``): nothing here ever prints a value, and
the docs ask for every secret to be a masked variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.errors import ConfigError
from provisioner.plan.document import PlanDoc
from provisioner.render.plan import total_counts
from provisioner.render.safe import terminal_safe

TOKEN_VARIABLE = "PROVISIONER_GITLAB_TOKEN"
MERGE_REQUEST_EVENT = "merge_request_event"
WIDGET_CAP = 999_999
"""GitLab's Terraform report parser caps each count at this."""
_WHERE = "run this in a GitLab CI job (the runner sets it), or export it"
_SECTION_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class GitLabContext:
    """What the runner says about this job. The tokens never appear in ``repr``."""

    api_url: str
    project_id: str
    pipeline_source: str
    sha: str
    default_branch: str
    job_url: str
    pipeline_url: str = ""
    project_url: str = ""
    """The project's web page (``CI_PROJECT_URL``): where its merge requests and issues are."""
    mr_iid: int | None = None
    mr_project_id: str = ""
    mr_source_project_id: str = ""
    mr_source_sha: str = ""
    ca_file: Path | None = None
    token: str = field(default="", repr=False)
    job_token: str = field(default="", repr=False)

    @property
    def run_url(self) -> str:
        return self.job_url

    @property
    def head_sha(self) -> str:
        """The merge request's head: set in merged-results pipelines, else the commit."""
        return self.mr_source_sha or self.sha

    @property
    def is_fork(self) -> bool:
        """A merge request from a fork: its code may not hold the parent's comment token."""
        source, target = self.mr_source_project_id, self.mr_project_id
        return bool(source and target and source != target)


def read_context(env: Mapping[str, str]) -> GitLabContext:
    """The :class:`GitLabContext` from ``env``; ConfigError naming a missing variable."""
    for name in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_COMMIT_SHA"):
        if not env.get(name):
            raise ConfigError(f"{name} is not set", hint=_WHERE)
    if not env["CI_API_V4_URL"].startswith(("https://", "http://")):
        raise ConfigError(
            f"CI_API_V4_URL is not an http(s) URL: {env['CI_API_V4_URL']!r}", hint=_WHERE
        )
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    ca_file = env.get("CI_SERVER_TLS_CA_FILE")
    return GitLabContext(
        api_url=env["CI_API_V4_URL"].rstrip("/"),
        project_id=env["CI_PROJECT_ID"],
        pipeline_source=env.get("CI_PIPELINE_SOURCE", ""),
        sha=env["CI_COMMIT_SHA"],
        default_branch=env.get("CI_DEFAULT_BRANCH", "main"),
        job_url=env.get("CI_JOB_URL", ""),
        pipeline_url=env.get("CI_PIPELINE_URL", ""),
        project_url=env.get("CI_PROJECT_URL", "").rstrip("/"),
        mr_iid=int(iid) if iid.isdigit() else None,
        mr_project_id=env.get("CI_MERGE_REQUEST_PROJECT_ID", ""),
        mr_source_project_id=env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", ""),
        mr_source_sha=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", ""),
        ca_file=Path(ca_file) if ca_file else None,
        token=env.get(TOKEN_VARIABLE, ""),
        job_token=env.get("CI_JOB_TOKEN", ""),
    )


def require_merge_request(context: GitLabContext) -> int:
    """The merge request's iid; ConfigError outside a ``merge_request_event`` pipeline."""
    if context.pipeline_source != MERGE_REQUEST_EVENT or context.mr_iid is None:
        source = context.pipeline_source or "(not set)"
        raise ConfigError(
            f"`gitlab plan` runs in merge request pipelines only; this pipeline's source is"
            f" {source}",
            hint='give the plan job `rules: [{if: $CI_PIPELINE_SOURCE == "merge_request_event"}]`'
            " (examples/gitlab/.gitlab-ci.yml)",
        )
    return context.mr_iid


def require_token(context: GitLabContext) -> str:
    if not context.token:
        raise ConfigError(
            f"{TOKEN_VARIABLE} is not set: CI_JOB_TOKEN cannot post notes or issues",
            hint=f"add a CI/CD variable {TOKEN_VARIABLE} (masked): a project access token with"
            " the Reporter role and the `api` scope (docs/gitlab.md)",
        )
    return context.token


# --- the job log, artifacts and reports -----------------------------------------------------


def section(name: str, header: str, text: str, *, collapsed: bool, at: int) -> str:
    """``text`` in a collapsible section of the job log. ``header`` and ``text`` are made
    terminal-safe line by line (no ESC, no CR), so nothing in them can end the section or
    fake another; ``at`` is the Unix time GitLab's markers carry."""
    key = _SECTION_NAME.sub("_", name)[:64] or "provisioner"
    flag = "[collapsed=true]" if collapsed else ""
    body = terminal_safe(text.rstrip("\n"), keep_newlines=True)
    return (
        f"\x1b[0Ksection_start:{at}:{key}{flag}\r\x1b[0K{terminal_safe(header)}\n"
        f"{body}\n\x1b[0Ksection_end:{at}:{key}\r\x1b[0K\n"
    )


def terraform_report(docs: Sequence[PlanDoc]) -> str:
    """``{"create", "update", "delete"}`` for the merge request widget
    (``artifacts:reports:terraform``): creates and adoptions, updates, deletes."""
    counts = total_counts(docs)
    report = {
        "create": counts.get("create", 0) + counts.get("adopt", 0),
        "update": counts.get("update", 0),
        "delete": counts.get("delete", 0),
    }
    return json.dumps({key: min(value, WIDGET_CAP) for key, value in report.items()}) + "\n"


def dotenv(values: Mapping[str, str]) -> str:
    """A dotenv report (``artifacts:reports:dotenv``): ``NAME=value`` lines; names
    ``PROVISIONER_*`` in capitals, values on one line."""
    lines = []
    for name, value in values.items():
        key = "PROVISIONER_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
        if "\n" in value or "\r" in value:
            raise ConfigError(f"the output {name} holds a line break", hint="report this bug")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def plan_outputs(docs: Sequence[PlanDoc]) -> dict[str, str]:
    """``changes``, ``blocked`` (``true``/``false``) and ``plan_ids`` (app=id, comma-separated)."""
    return {
        "changes": "true" if any(doc["has_changes"] for doc in docs) else "false",
        "blocked": "true" if any(doc["blocked"] for doc in docs) else "false",
        "plan_ids": ",".join(f"{doc['app']}={doc['id']}" for doc in docs),
    }


def append_file(path: Path, text: str, what: str) -> None:
    """Append ``text`` to a file the job was told to write (``--summary``, ``--dotenv``)."""
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what} {path}: {exc.strerror or exc}",
            hint="give a path in the job's working directory (and list it under artifacts)",
        ) from exc
