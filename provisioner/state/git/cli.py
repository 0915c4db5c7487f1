"""The git commands behind the git backend: plumbing only, never the user's work tree.

Everything runs in the manifests' own repository (so the credentials CI set up for it, such as
actions/checkout's, apply; in GitHub Actions the job's ``GITHUB_TOKEN``, in GitLab CI
:data:`STATE_PUSH_TOKEN`, is offered to the CI's own server too, see :func:`ci_credentials`),
with its client-side hooks and automatic gc turned off, no terminal prompt and the C locale.
Objects are made with ``hash-object``, ``read-tree`` into a private index file, ``write-tree``
and ``commit-tree``; the remote's branch is fetched into a private ref
(``refs/provisioner/<remote>/<branch>``) and pushed with ``--force-with-lease=<branch>:<the
commit it was built on>``: a compare-and-swap. Messages never show a remote URL's credentials.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provisioner.errors import StateError

GIT_TIMEOUT = 300.0
"""Seconds any git command may take (a fetch or push over a slow link included)."""
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_MISSING_REMOTE_REF = "couldn't find remote ref"
_REF_LOCK_RETRIES = 5
_DENIED = ("authentication failed", "error: 401", "error: 403", "permission", "not allowed")
"""Signs in git's error that the remote refused this clone's credentials (or their rights)."""
STATE_PUSH_TOKEN = "PROVISIONER_STATE_PUSH_TOKEN"
"""The CI/CD variable holding the token git pushes the state branch with on GitLab CI
(:func:`ci_credentials`): GitLab's job token can fetch but not push."""
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "provisioner",
    "GIT_AUTHOR_EMAIL": "provisioner@localhost",
    "GIT_COMMITTER_NAME": "provisioner",
    "GIT_COMMITTER_EMAIL": "provisioner@localhost",
}
_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0", "-c", "maintenance.auto=false")


def redact(text: str) -> str:
    """``text`` with the user info of every URL replaced (``https://***@host/...``)."""
    return _CREDENTIALS.sub("***@", text)


class GitError(Exception):
    """A git command failed (its redacted last error line in ``detail``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class PushResult:
    outcome: Literal["ok", "stale", "rejected", "failed"]
    detail: str = ""


class GitRepository:
    """The repository at ``top`` (its work tree is never touched)."""

    def __init__(self, top: Path, git_dir: Path) -> None:
        self.top = top
        self.git_dir = git_dir
        """The common git directory (shared by every worktree of the repository)."""

    @classmethod
    def discover(cls, base_dir: Path) -> GitRepository:
        """The repository holding ``base_dir``; StateError when there is none."""
        try:
            out = _git(base_dir, ["rev-parse", "--show-toplevel", "--git-common-dir"])
        except (GitError, OSError) as exc:
            detail = exc.detail if isinstance(exc, GitError) else str(exc)
            raise StateError(
                f"state backend git: {base_dir} is not inside a git repository ({detail})",
                hint="run provisioner from a clone of the manifests' repository, or use the"
                " file or postgres backend",
            ) from None
        top, common = out.decode().splitlines()[:2]
        git_dir = Path(common) if Path(common).is_absolute() else Path(top) / common
        return cls(Path(top), git_dir.resolve())

    def run(
        self, args: Sequence[str], *, stdin: bytes = b"", env: Mapping[str, str] | None = None
    ) -> bytes:
        return _git(self.top, args, stdin=stdin, env=env)

    # --- reading ----------------------------------------------------------------------

    def fetch(self, remote: str, branch: str) -> str | None:
        """Fetch ``branch`` of ``remote``; its commit, or None when the branch does not exist
        there yet."""
        ref = private_ref(remote, branch)
        spec = f"+refs/heads/{branch}:{ref}"
        args = ["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", remote, spec]
        for attempt in range(_REF_LOCK_RETRIES):
            try:
                self.run(args)
                break
            except GitError as exc:
                if _MISSING_REMOTE_REF in exc.detail:
                    self.delete_ref(ref)
                    return None
                if "cannot lock ref" not in exc.detail or attempt == _REF_LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))  # another process fetched into the same ref
        return self.run(["rev-parse", "--verify", f"{ref}^{{commit}}"]).decode().strip()

    def blob_ids(self, commit: str | None, paths: Sequence[str]) -> dict[str, str | None]:
        """The blob id of each path in ``commit`` (None: absent)."""
        found: dict[str, str | None] = dict.fromkeys(paths)
        if commit is None or not paths:
            return found
        out = self.run(["ls-tree", "-z", "--full-tree", commit, "--", *paths])
        for entry in out.split(b"\0"):
            if entry:
                meta, _, path = entry.decode().partition("\t")
                found[path] = meta.split()[2]
        return found

    def read_blobs(self, ids: Sequence[str], limit: int) -> dict[str, bytes]:
        """The content of each blob (GitError for one larger than ``limit`` bytes)."""
        if not ids:
            return {}
        sizes = self.run(["cat-file", "--batch-check"], stdin="\n".join(ids).encode() + b"\n")
        for line in sizes.decode().splitlines():
            oid, _kind, size = line.split()
            if int(size) > limit:
                raise GitError(f"object {oid} is {size} bytes, over {limit}")
        out = self.run(["cat-file", "--batch"], stdin="\n".join(ids).encode() + b"\n")
        blobs: dict[str, bytes] = {}
        position = 0
        for _ in ids:
            header_end = out.index(b"\n", position)
            oid, _kind, size = out[position:header_end].decode().split()
            start = header_end + 1
            blobs[oid] = out[start : start + int(size)]
            position = start + int(size) + 1
        return blobs

    # --- writing ----------------------------------------------------------------------

    def write_blobs(self, contents: Mapping[str, bytes]) -> dict[str, str]:
        """Store each content as a blob; path -> blob id."""
        if not contents:
            return {}
        with tempfile.TemporaryDirectory(prefix="provisioner-git-") as scratch:
            files = []
            for number, data in enumerate(contents.values()):
                file = Path(scratch) / str(number)
                file.write_bytes(data)
                files.append(str(file))
            out = self.run(
                ["hash-object", "-w", "--no-filters", "--stdin-paths"],
                stdin="\n".join(files).encode() + b"\n",
            )
        return dict(zip(contents, out.decode().split(), strict=True))

    def commit(self, parent: str | None, blobs: Mapping[str, str | None], message: str) -> str:
        """A commit of ``parent``'s tree with each path set to its blob (None: removed)."""
        lines = [
            f"100644 blob {blob}\t{path}" if blob else f"0 {'0' * 40}\t{path}"
            for path, blob in blobs.items()
        ]
        with tempfile.TemporaryDirectory(prefix="provisioner-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.run(["read-tree", parent] if parent else ["read-tree", "--empty"], env=env)
            self.run(["update-index", "--index-info"], stdin="\n".join(lines).encode(), env=env)
            tree = self.run(["write-tree"], env=env).decode().strip()
        parents = ["-p", parent] if parent else []
        args = ["commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-"]  # never a prompt
        out = self.run(args, stdin=message.encode())
        return out.decode().strip()

    def push(self, remote: str, commit: str, branch: str, expected: str | None) -> PushResult:
        """Compare-and-swap: set ``branch`` on ``remote`` to ``commit`` only if it still is
        ``expected`` (None: only if it does not exist)."""
        lease = f"--force-with-lease=refs/heads/{branch}:{expected or ''}"
        args = [
            "push",
            "--porcelain",
            "--no-verify",
            lease,
            remote,
            f"{commit}:refs/heads/{branch}",
        ]
        try:
            result = _run_git(self.top, args)
        except subprocess.TimeoutExpired:
            return PushResult("failed", f"git push did not finish within {GIT_TIMEOUT:.0f} s")
        except OSError as exc:
            return PushResult("failed", str(exc))
        status = _porcelain_status(result.stdout.decode(errors="replace"), branch)
        errors = result.stderr.decode(errors="replace")
        if result.returncode == 0:
            return PushResult("ok")
        if status is None:  # refused before any ref was sent (credentials, network)
            return PushResult("failed", _failure(errors))
        if any(sign in status for sign in _MOVED) or _lost_ref_race(status, errors):
            return PushResult("stale", status)
        said = _remote_said(errors)
        return PushResult("rejected", redact(f"{status}: {said}" if said else status))

    def update_ref(self, ref: str, commit: str) -> None:
        self.run(["update-ref", ref, commit])

    def delete_ref(self, ref: str) -> None:
        with contextlib.suppress(GitError):
            self.run(["update-ref", "-d", ref])


_MOVED = ("stale info", "fetch first", "non-fast-forward")
"""Refusals that mean: the branch moved since it was read (rebuild on the new tip)."""
_REF_RACES = ("cannot lock ref", "reference already exists", "but expected", "failed to update ref")
"""What the receiving side answers when another push updated the ref at the same moment."""


def _lost_ref_race(status: str, errors: str) -> bool:
    """A concurrent push won the race for the ref on the server: the same as a moved branch
    (a pre-receive hook's refusal is not one of these)."""
    if "hook declined" in status:
        return False
    return any(sign in status or sign in errors for sign in _REF_RACES)


def private_ref(remote: str, branch: str) -> str:
    """Where the last fetched or pushed commit of the state branch is kept."""
    return f"refs/provisioner/{remote}/{branch}"


def _porcelain_status(out: str, branch: str) -> str | None:
    """The summary of the branch's line in ``git push --porcelain`` output."""
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].endswith(f":refs/heads/{branch}"):
            return fields[2].strip() if fields[0] == "!" else "ok"
    return None


def _remote_said(stderr: str) -> str:
    """The server's own words in git's stderr (``remote:`` lines: a hook's refusal, the body
    of an HTTP 401 or 403), joined; not redacted."""
    lines = [line[7:].strip() for line in stderr.splitlines() if line.startswith("remote:")]
    return "; ".join(line for line in lines if line)


def access_hint(detail: str, branch: str, env: Mapping[str, str], *, push: bool = True) -> str:
    """What to do about a push (or, ``push`` False, a fetch) of ``branch`` that failed with
    ``detail``: when the remote refused the credentials, what to give the job on GitLab CI
    (:data:`STATE_PUSH_TOKEN`) or GitHub Actions."""
    denied = any(sign in detail.lower() for sign in _DENIED)
    gitlab, token = env.get("GITLAB_CI") == "true", env.get(STATE_PUSH_TOKEN)
    if denied and gitlab and token:
        return (
            f"check {STATE_PUSH_TOKEN}: a project access token that has not expired or been"
            f" revoked, with the write_repository scope and a role allowed to push to branch"
            f" {branch} (Settings > Repository > Protected branches), then run again"
        )
    if not push:
        return "check that this clone can fetch from the remote (network, credentials)"
    if not denied:
        return (
            "check that this clone can push to the branch (credentials, branch protection),"
            " then run again"
        )
    if gitlab:
        return (
            f"this job pushes with CI_JOB_TOKEN, which cannot push: set the CI/CD variable"
            f" {STATE_PUSH_TOKEN} (a project access token with the write_repository scope;"
            " masked and protected, it reaches only jobs of protected branches; docs/gitlab.md)"
        )
    if env.get("GITHUB_ACTIONS") == "true":
        return (
            f"give the job `permissions: contents: write`, and let its token push to branch"
            f" {branch} (no ruleset restricting updates there), then run again"
        )
    return f"give this clone credentials that may push to branch {branch}, then run again"


def _failure(stderr: str) -> str:
    """Why a git command failed, redacted: its last error line, then what the remote said
    (the body of an HTTP 401 or 403 tells a wrong token from one without the right)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    failure = (fatal or lines or ["git failed"])[-1]
    said = _remote_said(stderr)
    return redact(f"{failure}; remote: {said}" if said else failure)


def ci_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The environment that lets git fetch and push over HTTP(S) to the CI's own server (and
    only there) with the token the job has for it, given through git's ``GIT_CONFIG_COUNT``
    variables (appended to any already set) as an ``http.<server>/.extraheader``, never in a
    config file or on the command line, so the token is on no disk and in no process listing:

    - GitHub Actions: ``GITHUB_TOKEN`` for ``GITHUB_SERVER_URL`` (https only), the header
      actions/checkout writes (a checkout with ``persist-credentials: false`` works too);
    - GitLab CI: :data:`STATE_PUSH_TOKEN` for ``CI_SERVER_URL`` (its port and relative root
      included), as user ``provisioner`` (GitLab takes any non-blank user with a project access
      token). The runner's clone fetches with ``CI_JOB_TOKEN``, which cannot push; the header
      is sent first, so the token answers for fetches and pushes alike.

    Empty anywhere else, and in a GitLab job without the variable."""
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "")
        if server.startswith("https://"):
            return _extra_header(env, server, "x-access-token", env.get("GITHUB_TOKEN", ""))
    if env.get("GITLAB_CI") == "true":
        server = env.get("CI_SERVER_URL", "")
        if server.startswith(("https://", "http://")):
            return _extra_header(env, server, "provisioner", env.get(STATE_PUSH_TOKEN, ""))
    return {}


def _extra_header(env: Mapping[str, str], server: str, user: str, token: str) -> dict[str, str]:
    """``AUTHORIZATION: basic`` for ``user:token`` on every URL under ``server``, as the next
    ``GIT_CONFIG_COUNT`` entry of ``env`` (nothing without a token)."""
    if not token:
        return {}
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    basic = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": f"http.{server.rstrip('/')}/.extraheader",
        f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
    }


def _run_git(
    cwd: Path, args: Sequence[str], *, stdin: bytes = b"", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *_CONFIG, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, **ci_credentials(os.environ), **_ENV, **(env or {})},
        timeout=GIT_TIMEOUT,
        check=False,
    )


def _git(
    cwd: Path, args: Sequence[str], *, stdin: bytes = b"", env: Mapping[str, str] | None = None
) -> bytes:
    try:
        result = _run_git(cwd, args, stdin=stdin, env=env)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within {GIT_TIMEOUT:.0f} s") from None
    if result.returncode != 0:
        raise GitError(_failure(result.stderr.decode(errors="replace")))
    return result.stdout
