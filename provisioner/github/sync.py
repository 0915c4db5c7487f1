"""The GitHub writes of the GitOps loop, on top of :class:`GitHubClient`.

Each function makes a constant number of GitHub calls whatever the number of apps: one
listing (a page per 100 comments or issues) and at most two writes. A comment or issue is
of a kind when its first line is that kind's marker (``comment.carries_marker``); only what
the trusted login wrote is edited or believed; anything else carrying a marker is ignored
and reported in ``warnings`` for the caller to print.

- :func:`upsert_plan_comment`: the one sticky plan comment of a pull request;
- :func:`find_reviewed_plan`: the pull request merged as a commit (:func:`merged_pull`) and
  its trusted plan data (:func:`reviewed_plan`);
- :func:`post_apply_outcome`: the one apply-outcome comment of that pull request;
- :func:`sync_drift_issue`: the one drift issue: opened, rewritten, reopened, or closed;
- :func:`find_pending`, :func:`post_pending`: pending plans (:mod:`provisioner.forge.pending`);
- :func:`sync_plan_labels`: the pull request's labels from its plan (:func:`plan_labels`):
  ours set, created in the repository when missing, stale ones of ours removed, anybody
  else's left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from provisioner.errors import ConfigError, NoMergedPullRequestError, UnreviewedPlanError
from provisioner.forge.comment import (
    DEFAULT_TRUSTED_LOGIN,
    PLAN_MARKER,
    AppFailure,
    PlanData,
    parse_plan_data,
)
from provisioner.forge.drift import (
    DRIFT_LABEL,
    DRIFT_MARKER,
    DriftReport,
    drift_entries,
    drift_title,
    parse_drift_since,
    render_drift_issue,
)
from provisioner.forge.outcome import APPLY_MARKER
from provisioner.forge.pending import PENDING_MARKER, Pending, latest_pending
from provisioner.forge.trust import carries_marker, ignored_warning, is_trusted_author, pick_trusted
from provisioner.github.client import Comment, GitHubClient, Issue, PullRequest, Repo
from provisioner.plan.document import PlanDoc
from provisioner.render.texts import DEFAULT_LANG, Lang, tr

_GATE_HINT = (
    "require the plan check to pass before merging (branch protection), and merge only "
    "pull requests whose plan comment is current"
)


# --- comments -----------------------------------------------------------------------------


def upsert_comment(
    client: GitHubClient,
    repo: Repo,
    number: int,
    body: str,
    *,
    marker: str,
    trusted_login: str = DEFAULT_TRUSTED_LOGIN,
) -> tuple[Comment, list[str]]:
    """Edit the trusted comment marked ``marker`` on issue or pull request ``number``, or
    create it; an unchanged body is not written again. Returns it and the warnings."""
    picked = pick_trusted(client.issue_comments(repo, number), marker, trusted_login)
    existing = picked.comment
    if existing is None:
        return client.create_comment(repo, number, body), picked.warnings
    if existing.text == body:
        return existing, picked.warnings
    return client.update_comment(repo, existing.id, body), picked.warnings


def upsert_plan_comment(
    client: GitHubClient,
    repo: Repo,
    pr_number: int,
    body: str,
    trusted_login: str = DEFAULT_TRUSTED_LOGIN,
) -> tuple[Comment, list[str]]:
    """The one sticky plan comment (first line ``<!-- provisioner:plan -->``, and author)."""
    return upsert_comment(
        client, repo, pr_number, body, marker=PLAN_MARKER, trusted_login=trusted_login
    )


def post_apply_outcome(
    client: GitHubClient,
    repo: Repo,
    pr_number: int,
    body: str,
    trusted_login: str = DEFAULT_TRUSTED_LOGIN,
    marker: str = APPLY_MARKER,
) -> tuple[Comment, list[str]]:
    """The one apply-outcome comment on the merged pull request (a re-run edits it); a
    sharded apply passes its shard's ``marker`` (see ``outcome.apply_marker``)."""
    return upsert_comment(client, repo, pr_number, body, marker=marker, trusted_login=trusted_login)


# --- the reviewed plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedPlan:
    """The pull request merged as a commit, its trusted plan comment and that comment's data."""

    pull: PullRequest
    comment: Comment
    data: PlanData
    warnings: tuple[str, ...] = ()


def find_reviewed_plan(
    client: GitHubClient,
    repo: Repo,
    sha: str,
    trusted_login: str = DEFAULT_TRUSTED_LOGIN,
) -> ReviewedPlan:
    """The plan reviewed on the pull request merged as ``sha`` (``GITHUB_SHA`` of the push):
    :func:`merged_pull`, then :func:`reviewed_plan`."""
    return reviewed_plan(client, repo, merged_pull(client, repo, sha), trusted_login)


def reviewed_plan(
    client: GitHubClient, repo: Repo, pull: PullRequest, trusted_login: str = DEFAULT_TRUSTED_LOGIN
) -> ReviewedPlan:
    """The trusted plan comment of the merged pull request ``pull`` and its data.

    UnreviewedPlanError (exit 3) when it has no plan comment by ``trusted_login`` (a forged
    one is named), when the comment's data block cannot be read, or when it was made for an
    older head commit: the pull request's last push was never reviewed.
    """
    picked = pick_trusted(client.issue_comments(repo, pull.number), PLAN_MARKER, trusted_login)
    if picked.comment is None:
        forged = "".join(f"; {ignored_warning(comment)}" for comment in picked.ignored)
        raise UnreviewedPlanError(
            f"pull request #{pull.number} has no plan comment by {trusted_login}{forged}",
            hint="the plan job must post its comment before the merge; " + _GATE_HINT,
        )
    data = parse_plan_data(picked.comment.text)
    if data.head_sha != pull.head.sha:
        raise UnreviewedPlanError(
            f"the plan comment on pull request #{pull.number} is for commit "
            f"{data.head_sha[:12]}, but the pull request's last commit is {pull.head.sha[:12]}",
            hint="the plan of the last push was never posted; " + _GATE_HINT,
        )
    return ReviewedPlan(pull, picked.comment, data, tuple(picked.warnings))


def merged_pull(client: GitHubClient, repo: Repo, sha: str) -> PullRequest:
    pulls = client.pulls_for_commit(repo, sha)
    for pull in pulls:
        if pull.is_merged and pull.merge_commit_sha == sha:
            return pull
    seen = ", ".join(f"#{pull.number}" for pull in pulls)
    also = f" (associated but not merged as it: {seen})" if seen else ""
    raise NoMergedPullRequestError(
        f"no merged pull request has commit {sha[:12]} as its merge commit{also}",
        hint="apply applies what a merged pull request reviewed: change the default branch "
        "only through pull requests (branch protection); to apply without a review (a direct"
        " push, key rotation), run `github apply --auto-approve` in a protected environment",
    )


# --- the drift issue --------------------------------------------------------------------------


DriftAction = Literal["opened", "updated", "reopened", "closed", "none"]


@dataclass(frozen=True)
class DriftSync:
    """What :func:`sync_drift_issue` did, to which issue, and the warnings."""

    action: DriftAction
    issue: Issue | None
    warnings: tuple[str, ...] = field(default=())


def sync_drift_issue(
    client: GitHubClient,
    repo: Repo,
    report: DriftReport,
    trusted_login: str = DEFAULT_TRUSTED_LOGIN,
    label: str = DRIFT_LABEL,
    lang: Lang = DEFAULT_LANG,
) -> DriftSync:
    """Keep the repository's one drift issue (marker, trusted author, ``label``) in step
    with ``report``: open it when drift is found, rewrite its body whole each run, reopen
    it if it was closed while drift remains, close it with a comment when clean."""
    issue, warnings = _trusted_drift_issue(client, repo, trusted_login, label)
    previous = _previous_since(issue, warnings)
    entries = drift_entries(report.docs, previous, report.now)
    failed = {failure.app for failure in report.failures}
    kept = {app: since for app, since in previous.items() if app in failed}
    body = render_drift_issue(
        entries,
        report.failures,
        run_url=report.run_url,
        checked_at=report.now,
        kept_since=kept,
        plans=report.docs,
        sha=report.sha,
        lang=lang,
    )
    title = drift_title(lang)
    is_open = issue is not None and issue.state == "open"
    if entries and issue is None:
        made = client.create_issue(repo, title=title, body=body, labels=[label])
        return DriftSync("opened", made, tuple(warnings))
    if entries and issue is not None:
        changed = client.update_issue(repo, issue.number, title=title, body=body, state="open")
        return DriftSync("updated" if is_open else "reopened", changed, tuple(warnings))
    if issue is not None and is_open and report.failures:
        return DriftSync(
            "updated", client.update_issue(repo, issue.number, body=body), tuple(warnings)
        )
    if issue is not None and is_open:
        note = tr(lang, "drift.closing", url=report.run_url)
        client.create_comment(repo, issue.number, note)
        closed = client.update_issue(
            repo, issue.number, body=body, state="closed", state_reason="completed"
        )
        return DriftSync("closed", closed, tuple(warnings))
    return DriftSync("none", issue, tuple(warnings))


def _trusted_drift_issue(
    client: GitHubClient, repo: Repo, trusted_login: str, label: str
) -> tuple[Issue | None, list[str]]:
    issues = client.issues(repo, labels=[label], state="all")
    marked = [issue for issue in issues if carries_marker(issue.text, DRIFT_MARKER)]
    trusted = [issue for issue in marked if is_trusted_author(issue, trusted_login)]
    warnings = [
        f"ignored {issue.html_url or f'issue #{issue.number}'} by "
        f"{issue.user.login if issue.user else 'a deleted user'}: it carries provisioner's "
        "drift marker, but only what the workflow's own identity writes is trusted"
        for issue in marked
        if not is_trusted_author(issue, trusted_login)
    ]
    chosen = max(trusted, key=lambda issue: issue.number) if trusted else None
    return chosen, warnings


def _previous_since(issue: Issue | None, warnings: list[str]) -> dict[str, str]:
    if issue is None:
        return {}
    try:
        return parse_drift_since(issue.text)
    except ConfigError as exc:
        warnings.append(f"issue #{issue.number}: {exc.message}; every app's since starts now")
        return {}


# --- pending plans ----------------------------------------------------------------------------


def find_pending(client: GitHubClient, repo: Repo, number: int, trusted_login: str) -> Pending:
    """The latest pending plan on issue or pull request ``number`` written by
    ``trusted_login``: a pending-plan comment, or the drift issue's own body.
    UnreviewedPlanError when there is none."""
    comments = client.issue_comments(repo, number)
    issue = client.get_issue(repo, number)
    return latest_pending(comments, issue, number, trusted_login, trusted_login)


def post_pending(
    client: GitHubClient, repo: Repo, number: int, body: str, trusted_login: str
) -> tuple[Comment, list[str]]:
    """Post ``body`` as a new pending-plan comment on ``number`` (a pending plan is never
    edited, so what a reviewer read stays as it was), unless the latest trusted one already
    says exactly that."""
    picked = pick_trusted(client.issue_comments(repo, number), PENDING_MARKER, trusted_login)
    if picked.comment is not None and picked.comment.text == body:
        return picked.comment, picked.warnings
    return client.create_comment(repo, number, body), picked.warnings


# --- pull-request labels ----------------------------------------------------------------------


LabelKind = Literal["no-changes", "changes", "delete", "blocked"]
LABEL_KINDS: tuple[LabelKind, ...] = get_args(LabelKind)
DEFAULT_LABELS: Mapping[LabelKind, str] = {kind: f"provisioner:{kind}" for kind in LABEL_KINDS}
_LABEL_COLOURS: Mapping[LabelKind, str] = {
    "no-changes": "0e8a16",
    "changes": "fbca04",
    "delete": "d93f0b",
    "blocked": "b60205",
}
"""Each kind's colour; its description is the text ``label.<kind>`` in the job's language."""


def parse_label_names(spec: str) -> dict[LabelKind, str] | None:
    """The label of each kind from ``--pr-labels``: empty for the defaults, ``off`` for
    none (None), else ``KIND=NAME`` pairs (space- or comma-separated) renaming some kinds.
    ConfigError naming what is wrong."""
    words = spec.replace(",", " ").split()
    if words in (["off"], ["false"], ["none"]):
        return None
    names = dict(DEFAULT_LABELS)
    for word in words:
        kind, equals, name = word.partition("=")
        if not equals or kind not in LABEL_KINDS or not name:
            raise ConfigError(
                f"--pr-labels: {word!r} is not KIND=NAME",
                hint=f"KIND is one of {', '.join(LABEL_KINDS)}; or give `off` for no labels",
            )
        names[kind] = name
    return names


def plan_labels(
    docs: Sequence[PlanDoc], failures: Sequence[AppFailure] = ()
) -> tuple[LabelKind, ...]:
    """What a pull request's plan says, as label kinds: ``changes`` (with ``delete`` when
    a bot is deleted) and ``blocked``, or ``no-changes`` when no app changes anything (and
    every app could be planned)."""
    changes = [change for doc in docs for change in doc["changes"]]
    kinds: list[LabelKind] = []
    if changes:
        kinds.append("changes")
    if any(change["action"] == "delete" for change in changes):
        kinds.append("delete")
    if any(doc["blocked"] for doc in docs):
        kinds.append("blocked")
    if not kinds and not failures:
        kinds.append("no-changes")
    return tuple(kinds)


@dataclass(frozen=True)
class LabelSync:
    """The labels :func:`sync_plan_labels` put on and took off."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def sync_plan_labels(
    client: GitHubClient,
    repo: Repo,
    number: int,
    kinds: Sequence[LabelKind],
    names: Mapping[LabelKind, str] = DEFAULT_LABELS,
    lang: Lang = DEFAULT_LANG,
) -> LabelSync:
    """Give pull request ``number`` the labels of ``kinds`` (each created in the repository
    first when the pull request lacks it, with its colour and its description in ``lang``;
    a label the repository has already keeps its own) and take off
    the other labels of ours; labels that are not ours are never touched. One listing,
    then a write only for what changes."""
    current = {label.name.lower(): label.name for label in client.issue_labels(repo, number)}
    wanted = [names[kind] for kind in kinds]
    missing = [name for name in wanted if name.lower() not in current]
    for kind in kinds:
        if names[kind] in missing:
            client.create_label(repo, names[kind], _LABEL_COLOURS[kind], tr(lang, f"label.{kind}"))
    if missing:
        client.add_labels(repo, number, missing)
    ours = {names[kind].lower() for kind in LABEL_KINDS} - {name.lower() for name in wanted}
    stale = [current[name] for name in sorted(ours & set(current))]
    removed = [name for name in stale if client.remove_label(repo, number, name)]
    return LabelSync(tuple(missing), tuple(removed))
