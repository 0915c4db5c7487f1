"""A stateful stand-in for GitHub's REST API, served by uvicorn on 127.0.0.1 in a thread.

Use it as a context manager; ``fake.api_url`` is the base URL to give the client. Seed it
with ``add_repo``, ``add_token``, ``add_pull``, ``add_commit``, ``add_issue``,
``add_comment``; read it back with ``comments``, ``issue``, ``issues_of``; count requests
with ``calls`` (``Counter`` keyed by ``"METHOD /route/template"``).

Assumptions about GitHub that this fake makes (also listed in docs/github.md):

1. Every request carries a token (``Authorization: Bearer T`` or ``token T``); a missing or
   unknown token is 401 ``{"message": "Bad credentials"}``. (GitHub lets anonymous clients
   read public repositories; provisioner always sends a token.) The token decides the
   author (``user.login``, ``user.type``) of what it creates: the workflow's token writes as
   ``github-actions[bot]`` (type ``Bot``).
2. A request without a ``User-Agent`` is 403; an ``X-GitHub-Api-Version`` other than
   ``2022-11-28`` is 400.
3. A read-only token (a fork's pull request) gets 403 ``Resource not accessible by
   integration`` on every write.
4. Issues and pull requests share one number sequence per repository; every pull request
   is also an issue, listed by ``GET /issues`` with a ``pull_request`` key, and its
   comments are issue comments.
5. ``GET /commits/{sha}/pulls`` lists the pull requests whose head is ``sha`` or that were
   merged as ``sha`` (``merge_commit_sha``); a commit the repository does not have is 422
   ``No commit found for SHA``; a known commit without pull requests gives ``[]``.
6. Listings page with ``per_page`` (default 30, at most 100) and ``page``; the ``Link``
   header has ``next``/``last`` while more pages follow and ``prev``/``first`` after the
   first, each URL keeping the other query parameters.
7. ``GET /issues`` filters by ``state`` (``open`` default, ``closed``, ``all``), ``labels``
   (comma-separated, all required) and ``creator``; newest first.
8. Creating an issue with labels that do not exist creates them. ``PATCH`` on an issue
   changes only the fields given; ``labels`` replaces the set; closing sets
   ``state_reason`` (``completed`` unless given), reopening sets ``reopened``.
9. A comment or issue body over 65,536 characters (code points) is 422 ``Validation
   Failed`` with ``errors[0].message`` ``body is too long (maximum is 65536
   characters)``.
10. Every answer carries ``x-ratelimit-limit``/``-remaining``/``-used``/``-reset``
    (epoch seconds)/``-resource: core`` and ``x-github-request-id``. Each authenticated
    request uses one of ``primary_limit`` per hour; when none is left the answer is 403
    ``API rate limit exceeded`` with ``x-ratelimit-remaining: 0`` and no ``retry-after``.
11. Secondary rate limit (when ``secondary_limit`` is set): more than that many
    content-creating requests (POST, PATCH, PUT, DELETE) within 60 s is 403 ``You have
    exceeded a secondary rate limit`` with ``retry-after`` (seconds until a slot frees).
    Refused requests do not use a slot.
12. Unknown repositories, pull requests, issues and comments are 404 ``Not Found``.
13. Labels: ``POST /labels`` creates a repository label (201; ``color`` six hex digits,
    default ``ededed``); a name that exists (compared case-insensitively) is 422
    ``Validation Failed`` with ``errors[0]`` ``{resource: Label, code: already_exists,
    field: name}``, a missing name 422 ``missing_field``. ``GET /issues/{n}/labels`` lists
    an issue's labels (paged). ``POST /issues/{n}/labels`` takes ``{"labels": [names]}``
    (or a bare list), adds them (creating a missing label with the default colour, as it
    does for issues) and answers 200 with every label of the issue. ``DELETE
    /issues/{n}/labels/{name}`` answers 200 with the labels left, or 404 ``Label does not
    exist`` when the issue does not carry it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

WORKFLOW_TOKEN = "ghs_fakeWorkflowToken0123456789abcdef"
"""The workflow's token: writes as ``github-actions[bot]``."""
WORKFLOW_LOGIN = "github-actions[bot]"
HUMAN_TOKEN = "ghp_fakeHumanToken0123456789abcdef"
"""A person's token: writes as ``mallory`` (to forge comments in tests)."""
HUMAN_LOGIN = "mallory"
READONLY_TOKEN = "ghs_fakeReadonlyToken0123456789abcd"
"""A fork pull request's token: reads only."""
REPO_NAME = "octo/bots"
"""The repository the ``github`` fixture seeds."""
BODY_LIMIT = 65_536
API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class FakeClock:
    """A clock to share between the fake and the client: ``sleep`` advances ``now``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += seconds


@dataclass
class Account:
    login: str
    type: str
    id: int
    can_write: bool = True

    def data(self) -> dict[str, Any]:
        return {"login": self.login, "id": self.id, "type": self.type, "site_admin": False}


@dataclass
class FakeRepo:
    owner: str
    name: str
    default_branch: str = "main"
    next_number: int = 1
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    commits: dict[str, list[int]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The repository's labels by name (GitHub compares names case-insensitively)."""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def data(self) -> dict[str, Any]:
        return {"full_name": self.full_name, "name": self.name, "owner": {"login": self.owner}}


@dataclass
class Fault:
    """One scripted answer for the next request to ``"METHOD /route"``."""

    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"message": "Server Error"})
    headers: dict[str, str] = field(default_factory=dict)


class _Refusal(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
        self.headers: dict[str, str] = {}


class GitHubFake:
    """The fake's state, its Starlette app and the thread that serves it."""

    def __init__(
        self,
        *,
        prefix: str = "",
        primary_limit: int = 1000,
        secondary_limit: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.primary_limit = primary_limit
        self.secondary_limit = secondary_limit
        self.clock = clock
        self.url = ""
        self.calls: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.faults: dict[str, list[Fault]] = {}
        self._repos: dict[str, FakeRepo] = {}
        self._tokens: dict[str, Account] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._comment_repo: dict[int, str] = {}
        self._ids = itertools.count(1001)
        self._window_start: float | None = None
        self._used = 0
        self._writes: list[float] = []
        self._lock = threading.RLock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.add_token(WORKFLOW_TOKEN, WORKFLOW_LOGIN, type="Bot")
        self.add_token(HUMAN_TOKEN, HUMAN_LOGIN)
        self.add_token(READONLY_TOKEN, WORKFLOW_LOGIN, type="Bot", can_write=False)

    @property
    def api_url(self) -> str:
        return self.url + self.prefix

    # -- seeding and reading ---------------------------------------------------------------

    def add_token(
        self, token: str, login: str, *, type: str = "User", can_write: bool = True
    ) -> None:
        with self._lock:
            self._tokens[token] = Account(login, type, next(self._ids), can_write)

    def add_repo(self, full_name: str) -> FakeRepo:
        owner, name = full_name.split("/")
        with self._lock:
            return self._repos.setdefault(full_name, FakeRepo(owner, name))

    def add_commit(self, repo: str, sha: str) -> None:
        """A commit with no pull request (pushed straight to the default branch)."""
        with self._lock:
            self._repos[repo].commits.setdefault(sha, [])

    def add_pull(
        self,
        repo: str,
        *,
        head_sha: str,
        head_repo: str | None = None,
        merge_commit_sha: str | None = None,
        merged: bool = False,
        author: str = "alice",
        title: str = "Change the bots",
    ) -> int:
        """A pull request (also an issue); ``head_repo`` other than ``repo`` is a fork."""
        with self._lock:
            fake = self._repos[repo]
            number = self._issue(fake, title, "", [], self._account(author), state="open")
            now = self._timestamp()
            fork = self.add_repo(head_repo) if head_repo else fake
            pull = {
                "id": next(self._ids),
                "number": number,
                "title": title,
                "state": "closed" if merged else "open",
                "html_url": f"https://github.com/{repo}/pull/{number}",
                "user": self._account(author).data(),
                "head": {"ref": "feature", "sha": head_sha, "repo": fork.data()},
                "base": {"ref": fake.default_branch, "sha": "0" * 40, "repo": fake.data()},
                "merged_at": now if merged else None,
                "merge_commit_sha": merge_commit_sha,
                "draft": False,
            }
            fake.pulls[number] = pull
            fake.issues[number]["pull_request"] = {"merged_at": pull["merged_at"]}
            if merged:
                fake.issues[number].update(state="closed", closed_at=now)
            for sha in filter(None, (head_sha, merge_commit_sha)):
                fake.commits.setdefault(sha, []).append(number)
            return number

    def push_to_pull(self, repo: str, number: int, head_sha: str) -> None:
        """A new commit pushed to the pull request's branch."""
        with self._lock:
            fake = self._repos[repo]
            fake.pulls[number]["head"]["sha"] = head_sha
            fake.commits.setdefault(head_sha, []).append(number)

    def merge_pull(self, repo: str, number: int, merge_commit_sha: str) -> None:
        """Merge the open pull request as ``merge_commit_sha`` (closes it, as GitHub does)."""
        with self._lock:
            fake = self._repos[repo]
            now = self._timestamp()
            pull = fake.pulls[number]
            pull.update(state="closed", merged_at=now, merge_commit_sha=merge_commit_sha)
            fake.issues[number]["pull_request"] = {"merged_at": now}
            fake.issues[number].update(state="closed", closed_at=now)
            fake.commits.setdefault(merge_commit_sha, []).append(number)

    def add_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str = "",
        labels: tuple[str, ...] = (),
        author: str = WORKFLOW_LOGIN,
        state: str = "open",
    ) -> int:
        with self._lock:
            fake = self._repos[repo]
            return self._issue(fake, title, body, list(labels), self._account(author), state)

    def add_comment(
        self, repo: str, number: int, body: str, *, author: str = WORKFLOW_LOGIN
    ) -> int:
        with self._lock:
            self._require_issue(self._repos[repo], number)
            return self._comment(repo, number, body, self._account(author))["id"]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(comment)
                for comment_id, comment in sorted(self._comments.items())
                if self._comment_repo[comment_id] == repo and comment["_issue"] == number
            ]

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._repos[repo].issues[number])

    def issues_of(self, repo: str) -> list[dict[str, Any]]:
        """Every issue that is not a pull request, oldest first."""
        with self._lock:
            items = self._repos[repo].issues.values()
            return [dict(issue) for issue in items if "pull_request" not in issue]

    def fail_next(self, route: str, *faults: Fault) -> None:
        """Answer the next requests to ``route`` (``"METHOD /template"``) with ``faults``."""
        with self._lock:
            self.faults.setdefault(route, []).extend(faults)

    def exhaust_primary(self) -> None:
        """Use up the primary rate limit of the current hour."""
        with self._lock:
            self._roll_window()
            self._used = self.primary_limit

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    @property
    def write_calls(self) -> int:
        return sum(count for route, count in self.calls.items() if route.split()[0] != "GET")

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> GitHubFake:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app(),
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the GitHub fake did not start")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._socket = sock
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    # -- the app ---------------------------------------------------------------------------

    ROUTES = (
        ("GET", "/repos/{owner}/{repo}/commits/{sha}/pulls", "_commit_pulls"),
        ("GET", "/repos/{owner}/{repo}/pulls/{number:int}", "_get_pull"),
        ("GET", "/repos/{owner}/{repo}/issues", "_list_issues"),
        ("POST", "/repos/{owner}/{repo}/issues", "_create_issue"),
        ("GET", "/repos/{owner}/{repo}/issues/{number:int}", "_get_issue"),
        ("PATCH", "/repos/{owner}/{repo}/issues/{number:int}", "_update_issue"),
        ("GET", "/repos/{owner}/{repo}/issues/{number:int}/comments", "_list_comments"),
        ("POST", "/repos/{owner}/{repo}/issues/{number:int}/comments", "_create_comment"),
        ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id:int}", "_update_comment"),
        ("POST", "/repos/{owner}/{repo}/labels", "_create_label"),
        ("GET", "/repos/{owner}/{repo}/issues/{number:int}/labels", "_list_issue_labels"),
        ("POST", "/repos/{owner}/{repo}/issues/{number:int}/labels", "_add_issue_labels"),
        ("DELETE", "/repos/{owner}/{repo}/issues/{number:int}/labels/{name}", "_remove_label"),
    )

    def app(self) -> Starlette:
        routes = [
            Route(path, self._endpoint(method, path, handler), methods=[method])
            for method, path, handler in self.ROUTES
        ]
        if self.prefix:
            return Starlette(routes=[Mount(self.prefix, routes=routes)])
        return Starlette(routes=routes)

    def _endpoint(self, method: str, path: str, handler: str) -> Callable[[Request], Any]:
        route = f"{method} {path.replace(':int', '')}"

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            return await asyncio.to_thread(self._serve, route, handler, request, body)

        return endpoint

    def _serve(self, route: str, handler: str, request: Request, raw: bytes) -> Response:
        with self._lock:
            self.calls[route] += 1
            self.headers_seen.append(dict(request.headers))
            request_id = secrets.token_hex(8).upper()
            try:
                account = self._check_request(request, route)
                fault = self._next_fault(route)
                if fault is not None:
                    return self._answer(fault.status, fault.body, request_id, fault.headers)
                payload = json.loads(raw) if raw else {}
                status, data, headers = getattr(self, handler)(request, account, payload)
                return self._answer(status, data, request_id, headers)
            except _Refusal as refusal:
                return self._answer(refusal.status, refusal.body, request_id, refusal.headers)

    def _answer(
        self, status: int, data: Any, request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        limits = self._limit_headers()
        merged = {**limits, "x-github-request-id": request_id, **(headers or {})}
        return JSONResponse(data, status_code=status, headers=merged)

    def _next_fault(self, route: str) -> Fault | None:
        queue = self.faults.get(route)
        return queue.pop(0) if queue else None

    # -- checks ----------------------------------------------------------------------------

    def _check_request(self, request: Request, route: str) -> Account:
        if not request.headers.get("user-agent"):
            raise _Refusal(
                403,
                "Request forbidden by administrative rules. Please make sure "
                "your request has a User-Agent header",
            )
        version = request.headers.get("x-github-api-version")
        if version is not None and version != API_VERSION:
            raise _Refusal(400, f"API version {version} is not supported.")
        account = self._tokens.get(_token_of(request.headers.get("authorization", "")))
        if account is None:
            raise _Refusal(401, "Bad credentials")
        self._use_primary()
        if route.split()[0] in WRITE_METHODS:
            if not account.can_write:
                raise _Refusal(403, "Resource not accessible by integration")
            self._use_secondary()
        return account

    def _roll_window(self) -> None:
        now = self.clock()
        if self._window_start is None or now >= self._window_start + 3600:
            self._window_start = now
            self._used = 0

    def _use_primary(self) -> None:
        self._roll_window()
        if self._used >= self.primary_limit:
            raise _Refusal(403, "API rate limit exceeded for installation ID 1.")
        self._used += 1

    def _use_secondary(self) -> None:
        if self.secondary_limit is None:
            return
        now = self.clock()
        self._writes = [at for at in self._writes if at > now - 60]
        if len(self._writes) >= self.secondary_limit:
            refusal = _Refusal(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again.",
            )
            refusal.headers["retry-after"] = str(max(1, int(self._writes[0] + 60 - now + 0.999)))
            raise refusal
        self._writes.append(now)

    def _limit_headers(self) -> dict[str, str]:
        start = self._window_start if self._window_start is not None else self.clock()
        return {
            "x-ratelimit-limit": str(self.primary_limit),
            "x-ratelimit-remaining": str(max(0, self.primary_limit - self._used)),
            "x-ratelimit-used": str(self._used),
            "x-ratelimit-reset": str(int(start + 3600)),
            "x-ratelimit-resource": "core",
        }

    # -- handlers --------------------------------------------------------------------------

    Answer = tuple[int, Any, dict[str, str]]

    def _commit_pulls(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        sha = request.path_params["sha"]
        if sha not in repo.commits:
            raise _Refusal(422, f"No commit found for SHA: {sha}")
        pulls = [repo.pulls[number] for number in repo.commits[sha]]
        return self._page(request, pulls)

    def _get_pull(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        pull = repo.pulls.get(request.path_params["number"])
        if pull is None:
            raise _Refusal(404, "Not Found")
        return 200, {**pull, "merged": pull["merged_at"] is not None}, {}

    def _list_issues(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        query = request.query_params
        state = query.get("state", "open")
        wanted = {name for name in query.get("labels", "").split(",") if name}
        creator = query.get("creator")
        found = [
            issue
            for issue in sorted(repo.issues.values(), key=lambda item: -item["number"])
            if (state == "all" or issue["state"] == state)
            and wanted <= {label["name"] for label in issue["labels"]}
            and (creator is None or issue["user"]["login"].lower() == creator.lower())
        ]
        return self._page(request, found)

    def _create_issue(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        title, body = payload.get("title"), payload.get("body") or ""
        if not title:
            raise _Refusal(422, "Validation Failed", errors=[_missing("Issue", "title")])
        _check_length("Issue", body)
        number = self._issue(repo, title, body, list(payload.get("labels") or []), account)
        return 201, repo.issues[number], {}

    def _get_issue(self, request: Request, account: Account, payload: Any) -> Answer:
        return 200, self._require_issue(self._repo(request), request.path_params["number"]), {}

    def _update_issue(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        issue = self._require_issue(repo, request.path_params["number"])
        if "body" in payload:
            _check_length("Issue", payload["body"] or "")
            issue["body"] = payload["body"]
        if "title" in payload:
            issue["title"] = payload["title"]
        if "labels" in payload:
            issue["labels"] = [self._label(repo, name) for name in payload["labels"]]
        if payload.get("state") in ("open", "closed") and payload["state"] != issue["state"]:
            closing = payload["state"] == "closed"
            issue["state"] = payload["state"]
            issue["state_reason"] = (
                payload.get("state_reason") or "completed" if closing else "reopened"
            )
            issue["closed_at"] = self._timestamp() if closing else None
        issue["updated_at"] = self._timestamp()
        return 200, issue, {}

    def _list_comments(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        number = request.path_params["number"]
        self._require_issue(repo, number)
        return self._page(request, self.comments(repo.full_name, number))

    def _create_comment(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        number = request.path_params["number"]
        self._require_issue(repo, number)
        body = payload.get("body")
        if not body:
            raise _Refusal(422, "Validation Failed", errors=[_missing("IssueComment", "body")])
        _check_length("IssueComment", body)
        return 201, self._comment(repo.full_name, number, body, account), {}

    def _update_comment(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        comment = self._comments.get(request.path_params["comment_id"])
        if comment is None or self._comment_repo[comment["id"]] != repo.full_name:
            raise _Refusal(404, "Not Found")
        body = payload.get("body") or ""
        _check_length("IssueComment", body)
        comment.update(body=body, updated_at=self._timestamp())
        return 200, comment, {}

    def _create_label(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        name = payload.get("name") if isinstance(payload, dict) else None
        if not name:
            raise _Refusal(422, "Validation Failed", errors=[_missing("Label", "name")])
        if name.lower() in {known.lower() for known in repo.labels}:
            error = {"resource": "Label", "code": "already_exists", "field": "name"}
            raise _Refusal(422, "Validation Failed", errors=[error])
        color = str(payload.get("color") or "ededed").lstrip("#")
        if len(color) != 6 or any(char not in "0123456789abcdefABCDEF" for char in color):
            error = {"resource": "Label", "code": "invalid", "field": "color"}
            raise _Refusal(422, "Validation Failed", errors=[error])
        label = self._label(repo, name, color, payload.get("description"))
        return 201, label, {}

    def _list_issue_labels(self, request: Request, account: Account, payload: Any) -> Answer:
        issue = self._require_issue(self._repo(request), request.path_params["number"])
        return self._page(request, issue["labels"])

    def _add_issue_labels(self, request: Request, account: Account, payload: Any) -> Answer:
        repo = self._repo(request)
        issue = self._require_issue(repo, request.path_params["number"])
        names = payload.get("labels") if isinstance(payload, dict) else payload
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise _Refusal(422, "Validation Failed", errors=[_missing("Label", "labels")])
        held = {label["name"].lower() for label in issue["labels"]}
        for name in names:
            if name.lower() not in held:
                issue["labels"].append(self._label(repo, name))
                held.add(name.lower())
        issue["updated_at"] = self._timestamp()
        return 200, issue["labels"], {}

    def _remove_label(self, request: Request, account: Account, payload: Any) -> Answer:
        issue = self._require_issue(self._repo(request), request.path_params["number"])
        name = request.path_params["name"]
        kept = [label for label in issue["labels"] if label["name"].lower() != name.lower()]
        if len(kept) == len(issue["labels"]):
            raise _Refusal(404, "Label does not exist")
        issue["labels"] = kept
        issue["updated_at"] = self._timestamp()
        return 200, kept, {}

    # -- helpers ---------------------------------------------------------------------------

    def _repo(self, request: Request) -> FakeRepo:
        name = f"{request.path_params['owner']}/{request.path_params['repo']}"
        repo = self._repos.get(name)
        if repo is None:
            raise _Refusal(404, "Not Found")
        return repo

    def _require_issue(self, repo: FakeRepo, number: int) -> dict[str, Any]:
        issue = repo.issues.get(number)
        if issue is None:
            raise _Refusal(404, "Not Found")
        return issue

    def _account(self, login: str) -> Account:
        for account in self._tokens.values():
            if account.login == login:
                return account
        return Account(login, "Bot" if login.endswith("[bot]") else "User", next(self._ids))

    def _label(
        self, repo: FakeRepo, name: str, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        """The repository label ``name``, created (with ``color``) when it has none yet."""
        for known, label in repo.labels.items():
            if known.lower() == name.lower():
                return label
        repo.labels[name] = {
            "id": next(self._ids),
            "name": name,
            "color": color,
            "description": description,
            "default": False,
        }
        return repo.labels[name]

    def repo_labels(self, repo: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(label) for name, label in self._repos[repo].labels.items()}

    def issue_label_names(self, repo: str, number: int) -> list[str]:
        with self._lock:
            return [label["name"] for label in self._repos[repo].issues[number]["labels"]]

    def _issue(
        self,
        repo: FakeRepo,
        title: str,
        body: str,
        labels: list[str],
        author: Account,
        state: str = "open",
    ) -> int:
        number = repo.next_number
        repo.next_number += 1
        now = self._timestamp()
        repo.issues[number] = {
            "id": next(self._ids),
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "state_reason": None,
            "labels": [self._label(repo, name) for name in labels],
            "user": author.data(),
            "html_url": f"https://github.com/{repo.full_name}/issues/{number}",
            "created_at": now,
            "updated_at": now,
            "closed_at": now if state == "closed" else None,
        }
        return number

    def _comment(self, repo: str, number: int, body: str, author: Account) -> dict[str, Any]:
        comment_id = next(self._ids)
        now = self._timestamp()
        comment = {
            "id": comment_id,
            "body": body,
            "user": author.data(),
            "html_url": f"https://github.com/{repo}/issues/{number}#issuecomment-{comment_id}",
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE" if author.type == "Bot" else "CONTRIBUTOR",
            "_issue": number,
        }
        self._comments[comment_id] = comment
        self._comment_repo[comment_id] = repo
        return comment

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Answer:
        query = dict(request.query_params)
        per_page = min(max(int(query.get("per_page", 30)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        last = max(1, -(-len(items) // per_page))
        chosen = [_public(item) for item in items[(page - 1) * per_page : page * per_page]]
        links = []
        base = str(request.url.replace(query=""))
        for rel, target in (("prev", page - 1), ("next", page + 1), ("last", last), ("first", 1)):
            show = target < page if rel in ("prev", "first") else page < last
            if show and 1 <= target <= last:
                links.append(f'<{base}?{urlencode({**query, "page": target})}>; rel="{rel}"')
        return 200, chosen, {"link": ", ".join(links)} if links else {}

    def _timestamp(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}


def _token_of(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def _missing(resource: str, name: str) -> dict[str, str]:
    return {"resource": resource, "code": "missing_field", "field": name}


def _check_length(resource: str, body: str) -> None:
    if len(body) > BODY_LIMIT:
        raise _Refusal(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": resource,
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {BODY_LIMIT} characters)",
                }
            ],
        )
