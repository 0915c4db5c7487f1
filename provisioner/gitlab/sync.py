"""The GitLab reads and writes of the GitOps loop, on top of :class:`GitLabClient`, with the
forge-neutral core's texts and rules (:mod:`provisioner.forge`).

Only notes and issues written by the trusted user (:class:`TrustedUser`: the token's own
user, ``GET /user``, or ``--trusted-user-id``) are believed, and a marker counts only as the
exact first line; GitLab's ``system`` notes are never read. Each function makes a constant
number of calls whatever the number of apps.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import (
    ConfigError,
    GitLabError,
    NoMergedPullRequestError,
    UnreviewedPlanError,
)
from provisioner.forge.comment import PLAN_MARKER, PlanData, parse_plan_data
from provisioner.forge.drift import (
    DRIFT_MARKER,
    DriftReport,
    drift_entries,
    drift_title,
    parse_drift_since,
    render_drift_issue,
)
from provisioner.forge.pending import PENDING_MARKER, Pending, latest_pending
from provisioner.forge.trust import Authored, carries_marker, ignored_warning, pick_trusted
from provisioner.forge.wording import GITLAB
from provisioner.gitlab.client import GitLabClient, Thread
from provisioner.gitlab.models import Issue, MergeRequest, Note
from provisioner.render.texts import DEFAULT_LANG, Lang, tr

_GATE_HINT = (
    "protect the default branch, turn on “Pipelines must succeed”, and merge only merge"
    " requests whose plan note is current"
)


@dataclass(frozen=True)
class TrustedUser:
    """The one author whose notes and issues count: compared by user id (access-token bots
    have generated usernames)."""

    id: int
    username: str = ""

    def __call__(self, item: Authored) -> bool:
        return getattr(item.user, "id", None) == self.id

    def __str__(self) -> str:
        return f"{self.username} (user id {self.id})" if self.username else f"user id {self.id}"


# --- notes ------------------------------------------------------------------------------------


def upsert_note(
    client: GitLabClient, thread: Thread, iid: int, body: str, marker: str, trusted: TrustedUser
) -> tuple[Note, list[str]]:
    """Edit the trusted note marked ``marker`` on merge request or issue ``iid``, or create
    it; an unchanged body is not written again. Returns it and the warnings."""
    picked = pick_trusted(client.notes(thread, iid), marker, trusted)
    existing = picked.comment
    if existing is None:
        return client.create_note(thread, iid, body), picked.warnings
    if existing.text == body:
        return existing, picked.warnings
    return client.update_note(thread, iid, existing.id, body), picked.warnings


def post_pending(
    client: GitLabClient, thread: Thread, iid: int, body: str, trusted: TrustedUser
) -> tuple[Note, list[str]]:
    """A new pending-plan note (never an edit of one a reviewer read), unless the latest
    trusted one already says exactly that."""
    picked = pick_trusted(client.notes(thread, iid), PENDING_MARKER, trusted)
    if picked.comment is not None and picked.comment.text == body:
        return picked.comment, picked.warnings
    return client.create_note(thread, iid, body), picked.warnings


# --- the reviewed plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedPlan:
    """The merge request merged as a commit, its trusted plan note and that note's data."""

    merge_request: MergeRequest
    note: Note
    data: PlanData
    warnings: tuple[str, ...] = ()


def merged_request(
    client: GitLabClient, sha: str, *, default_branch: str, project_id: int
) -> MergeRequest:
    """The one merge request of this project merged into ``default_branch`` as ``sha`` (its
    merge commit, squash commit or fast-forwarded head). GitLab's lookup also returns open
    merge requests that contain the commit, so every condition is checked here."""
    found = client.commit_merge_requests(sha)
    merged = [
        each
        for each in found
        if each.merged_as(sha)
        and each.target_branch == default_branch
        and each.target_project_id in (None, project_id)
    ]
    if len(merged) == 1:
        return merged[0]
    seen = ", ".join(f"!{each.iid}" for each in found)
    if merged:
        raise UnreviewedPlanError(
            f"several merge requests were merged as commit {sha[:12]} ({seen})",
            hint="apply them one by one with `gitlab apply --pending N`",
        )
    also = f" (associated but not merged as it: {seen})" if seen else ""
    raise NoMergedPullRequestError(
        f"no merged merge request has commit {sha[:12]} as its merge commit{also}",
        hint="apply applies what a merged merge request reviewed: change the default branch"
        " only through merge requests (protected branch); to apply without a review (a direct"
        " push, key rotation), run `gitlab apply --auto-approve` in a protected job",
    )


def reviewed_plan(
    client: GitLabClient, merge_request: MergeRequest, trusted: TrustedUser
) -> ReviewedPlan:
    """The trusted plan note of ``merge_request`` and its data; UnreviewedPlanError (exit 3)
    without one (a forged one is named), with an unreadable one, or with one made for
    another head than the one merged."""
    iid = merge_request.iid
    picked = pick_trusted(client.notes("merge_requests", iid), PLAN_MARKER, trusted)
    if picked.comment is None:
        forged = "".join(f"; {ignored_warning(note)}" for note in picked.ignored)
        raise UnreviewedPlanError(
            f"merge request !{iid} has no plan note by {trusted}{forged}",
            hint="the plan job must post its note before the merge; " + _GATE_HINT,
        )
    data = parse_plan_data(picked.comment.text)
    head = merge_request.sha or ""
    if data.head_sha != head:
        raise UnreviewedPlanError(
            f"the plan note on merge request !{iid} is for commit {data.head_sha[:12]}, but"
            f" the merge request's last commit is {head[:12]}",
            hint="the plan of the last push was never posted; " + _GATE_HINT,
        )
    return ReviewedPlan(merge_request, picked.comment, data, tuple(picked.warnings))


def find_pending(client: GitLabClient, number: int, trusted: TrustedUser) -> tuple[Thread, Pending]:
    """The latest trusted pending plan on merge request ``number`` or, when it has none (or
    there is no such merge request: merge requests and issues are numbered apart), on issue
    ``number`` (a note, or the drift issue's description). UnreviewedPlanError when
    neither has one."""
    try:
        client.merge_request(number)
        notes = client.notes("merge_requests", number)
        return "merge_requests", latest_pending(notes, None, number, trusted, str(trusted), GITLAB)
    except GitLabError as exc:
        if exc.status != 404:
            raise
    except UnreviewedPlanError:
        pass
    try:
        issue = client.issue(number)
    except GitLabError as exc:
        if exc.status != 404:
            raise
        raise UnreviewedPlanError(
            f"neither merge request !{number} nor issue #{number} has a pending plan by {trusted}",
            hint="give the number of the merge request or issue that holds the pending plan",
        ) from None
    notes = client.notes("issues", number)
    return "issues", latest_pending(notes, issue, number, trusted, str(trusted), GITLAB)


# --- the drift issue --------------------------------------------------------------------------


def sync_drift_issue(
    client: GitLabClient,
    report: DriftReport,
    trusted: TrustedUser,
    label: str,
    lang: Lang = DEFAULT_LANG,
) -> tuple[str, Issue | None, list[str]]:
    """Keep the project's one drift issue in step with ``report``: open it when drift is
    found, rewrite its description whole each run, reopen it if it was closed while drift
    remains, close it with a note when clean (all in ``lang``). Returns what it did, the
    issue, warnings."""
    issue, warnings = _trusted_drift_issue(client, trusted, label)
    previous: dict[str, str] = {}
    if issue is not None:
        try:
            previous = parse_drift_since(issue.text)
        except ConfigError as exc:  # a hand-edited block
            warnings.append(f"issue #{issue.iid}: {exc.message}; every app's since starts now")
    entries = drift_entries(report.docs, previous, report.now)
    failed = {failure.app for failure in report.failures}
    body = render_drift_issue(
        entries,
        report.failures,
        run_url=report.run_url,
        checked_at=report.now,
        limit=GITLAB.issue_limit,
        kept_since={app: since for app, since in previous.items() if app in failed},
        plans=report.docs,
        sha=report.sha,
        lang=lang,
        wording=GITLAB,
    )
    found = bool(entries)
    return _write_drift_issue(client, issue, body, found, report, label, lang, warnings)


def _write_drift_issue(
    client: GitLabClient,
    issue: Issue | None,
    body: str,
    found: bool,
    report: DriftReport,
    label: str,
    lang: Lang,
    warnings: list[str],
) -> tuple[str, Issue | None, list[str]]:
    title = drift_title(lang)
    if found and issue is None:
        made = client.create_issue(title=title, description=body, labels=label)
        return "opened", made, warnings
    if found and issue is not None:
        fields = {"title": title, "description": body}
        if not issue.is_open:
            fields["state_event"] = "reopen"
        changed = client.update_issue(issue.iid, **fields)
        return ("updated" if issue.is_open else "reopened"), changed, warnings
    if issue is not None and issue.is_open and report.failures:
        return "updated", client.update_issue(issue.iid, description=body), warnings
    if issue is not None and issue.is_open:
        note = tr(lang, "drift.closing.gitlab", url=report.run_url)
        client.create_note("issues", issue.iid, note)
        closed = client.update_issue(issue.iid, description=body, state_event="close")
        return "closed", closed, warnings
    return "none", issue, warnings


def _trusted_drift_issue(
    client: GitLabClient, trusted: TrustedUser, label: str
) -> tuple[Issue | None, list[str]]:
    """The newest drift issue by the trusted user (GitLab filters by ``author_id``; the
    marker and the author are checked again here)."""
    issues = client.issues(labels=label, author_id=trusted.id)
    marked = [issue for issue in issues if carries_marker(issue.text, DRIFT_MARKER)]
    chosen = [issue for issue in marked if trusted(issue)]
    warnings = [
        f"ignored issue #{issue.iid}: it carries provisioner's drift marker, but only what the"
        " trusted user writes is trusted"
        for issue in marked
        if not trusted(issue)
    ]
    return (max(chosen, key=lambda issue: issue.iid) if chosen else None), warnings
