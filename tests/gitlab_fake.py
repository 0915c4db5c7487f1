"""A stateful stand-in for GitLab's REST API (v4), served by uvicorn on 127.0.0.1 in a thread.

Use it as a context manager; ``fake.api_url`` is ``CI_API_V4_URL``. Seed it with
``add_token``, ``add_merge_request``, ``push``, ``merge``, ``add_note``, ``add_issue``; read
it back with ``notes``, ``issues``; count requests with ``calls`` (``"METHOD /route"``).

What it assumes of GitLab (each also in docs/gitlab.md, "The GitLab stand-in"):

1. A token comes as ``PRIVATE-TOKEN: T``, ``Authorization: Bearer T`` or ``JOB-TOKEN: T``;
   a missing or unknown one is 401 ``{"message": "401 Unauthorized"}``. Each token belongs
   to a user (a project access token's bot user is ``project_<id>_bot_<hex>``) with a role
   in the project: guest 10, reporter 20, developer 30, maintainer 40.
2. A job token (``CI_JOB_TOKEN``) may only read a merge request, its notes and the merge
   requests of a commit, in its own project; anything else is 404 ``404 Not Found``.
3. Creating or editing notes and issues needs the reporter role; below it: 403
   ``403 Forbidden``. ``GET /user`` is the token's own user.
4. Only the numeric project id resolves; any other ``:id`` is 404 ``404 Project Not Found``.
   Merge requests and issues have separate ``iid`` sequences per project.
5. Notes list newest first by default (``sort=desc``, ``order_by=created_at``) and hold
   ``system`` notes (GitLab's own: "added 1 commit"); ``per_page`` is 20 by default and at
   most 100; every listing has ``Link`` (``prev``/``next``/``first``/``last``), ``x-page``,
   ``x-per-page``, ``x-next-page`` (empty on the last page), ``x-prev-page``, ``x-total``,
   ``x-total-pages``.
6. A note body over 1,000,000 characters is 400 with GitLab's message
   ``Note {:note=>["is too long (maximum is 1000000 characters)"]}``; an issue description
   over 1,048,576 is 400 ``{"message": {"description": ["is too long (maximum is 1048576
   characters)"]}}``.
7. Issues list filters by ``labels`` (comma-separated, all required), ``state``
   (``opened``, ``closed``, ``all``: the default) and ``author_id``, newest first; creating
   one with unknown labels creates them; ``PUT`` changes only the given fields
   (``labels`` replaces, ``add_labels`` adds, ``state_event`` ``close``/``reopen``).
8. ``GET /repository/commits/:sha/merge_requests`` returns the merge requests whose
   ``sha``, ``merge_commit_sha`` or ``squash_commit_sha`` is ``:sha`` and the open ones
   that contain it; an unknown commit is 404 ``404 Commit Not Found``.
9. With ``rack_limit`` set, authenticated requests carry ``RateLimit-Limit``,
   ``-Name``, ``-Observed``, ``-Remaining``, ``-Reset``; past the limit the answer is 429,
   plain text ``Retry later`` with ``Retry-After`` and ``RateLimit-ResetTime``. With
   ``notes_limit`` set, more note creations per minute than that are 429 JSON ``{"message":
   {"error": "This endpoint has been requested too many times. Try again later."}}`` with
   no rate-limit header (the application limit).
10. A failed write is answered 404 when the caller may not see the target (job token).
"""

from __future__ import annotations

import asyncio
import itertools
import json
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
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

PROJECT_ID = 42
FORK_ID = 77
BOT_TOKEN = "glpat-fakeBotToken0123456789ab"
"""The comment token (PROVISIONER_GITLAB_TOKEN): the project access token's bot, reporter."""
BOT_ID = 900
BOT_USERNAME = f"project_{PROJECT_ID}_bot_3f9a1c"
JOB_TOKEN = "glcbt-fakeJobToken0123456789abcd"
"""CI_JOB_TOKEN of the project's jobs (as the developer who triggered them)."""
HUMAN_TOKEN = "glpat-fakeMalloryToken012345678"
"""A developer's personal token: writes as ``mallory`` (to forge notes in tests)."""
GUEST_TOKEN = "glpat-fakeGuestToken0123456789a"
NOTE_LIMIT = 1_000_000
DESCRIPTION_LIMIT = 1_048_576
ROLES = {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40}
JOB_ROUTES = frozenset(
    {
        "GET /projects/{id}/merge_requests/{iid}",
        "GET /projects/{id}/merge_requests/{iid}/notes",
        "GET /projects/{id}/repository/commits/{sha}/merge_requests",
    }
)
TOO_MANY = "This endpoint has been requested too many times. Try again later."


@dataclass
class User:
    id: int
    username: str

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.username, "state": "active"}


@dataclass
class Token:
    user: User
    role: int
    job: bool = False


class _Refusal(Exception):
    def __init__(self, status: int, message: Any) -> None:
        super().__init__(str(message))
        self.status = status
        self.body = {"message": message}


@dataclass
class Fault:
    """One scripted answer for the next request to ``"METHOD /route"``."""

    status: int
    body: Any = field(default_factory=lambda: {"message": "500 Internal Server Error"})
    headers: dict[str, str] = field(default_factory=dict)


class GitLabFake:
    """The fake's state, its Starlette app and the thread that serves it."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rack_limit: int | None = None,
        notes_limit: int | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.tls = tls
        """(certificate file, key file): serve HTTPS (an internal CA's certificate)."""
        self.clock = clock
        self.rack_limit = rack_limit
        self.notes_limit = notes_limit
        self.url = ""
        self.calls: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.faults: dict[str, list[Fault]] = {}
        self.tokens: dict[str, Token] = {}
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self.issues_by_iid: dict[int, dict[str, Any]] = {}
        self.all_notes: dict[int, dict[str, Any]] = {}
        self.commits: set[str] = set()
        self.labels: set[str] = set()
        self._ids = itertools.count(5001)
        self._mr_iids = itertools.count(1)
        self._issue_iids = itertools.count(1)
        self._window: tuple[float, int] = (0.0, 0)
        self._note_times: list[float] = []
        self._lock = threading.RLock()
        self.bot = self.add_token(BOT_TOKEN, BOT_USERNAME, "reporter", user_id=BOT_ID)
        self.developer = self.add_token(JOB_TOKEN, "dev", "developer", job=True, user_id=300)
        self.add_token(HUMAN_TOKEN, "mallory", "developer", user_id=301)
        self.add_token(GUEST_TOKEN, "guest", "guest", user_id=302)

    @property
    def api_url(self) -> str:
        return self.url + "/api/v4"

    # -- seeding and reading ---------------------------------------------------------------

    def add_token(
        self, token: str, username: str, role: str, *, job: bool = False, user_id: int = 0
    ) -> User:
        with self._lock:
            user = User(user_id or next(self._ids), username)
            self.tokens[token] = Token(user, ROLES[role], job)
            return user

    def add_merge_request(self, sha: str, *, source_project_id: int = PROJECT_ID) -> int:
        with self._lock:
            iid = next(self._mr_iids)
            self.merge_requests[iid] = {
                "id": next(self._ids),
                "iid": iid,
                "project_id": PROJECT_ID,
                "state": "opened",
                "sha": sha,
                "merge_commit_sha": None,
                "squash_commit_sha": None,
                "target_branch": "main",
                "source_branch": f"feature-{iid}",
                "source_project_id": source_project_id,
                "target_project_id": PROJECT_ID,
                "web_url": f"https://gitlab.example.cn/g/bots/-/merge_requests/{iid}",
                "_commits": [sha],
            }
            self.commits.add(sha)
            self.add_note("merge_requests", iid, "created merge request", system=True)
            return iid

    def push(self, iid: int, sha: str) -> None:
        with self._lock:
            request = self.merge_requests[iid]
            request["sha"] = sha
            request["_commits"].append(sha)
            self.commits.add(sha)
            self.add_note("merge_requests", iid, "added 1 commit", system=True)

    def merge(self, iid: int, merge_commit: str, *, squash: bool = False) -> None:
        with self._lock:
            request = self.merge_requests[iid]
            key = "squash_commit_sha" if squash else "merge_commit_sha"
            request.update({"state": "merged", key: merge_commit})
            self.commits.add(merge_commit)
            self.add_note("merge_requests", iid, f"merged {merge_commit[:8]}", system=True)

    def add_note(
        self,
        thread: str,
        iid: int,
        body: str,
        *,
        token: str = BOT_TOKEN,
        system: bool = False,
    ) -> int:
        with self._lock:
            author = self.tokens[token].user if not system else User(1, "root")
            return self._note(thread, iid, body, author, system)["id"]

    def notes(self, thread: str, iid: int, *, system: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(note)
                for note in self.all_notes.values()
                if note["_thread"] == (thread, iid) and (system or not note["system"])
            ]

    def add_issue(
        self, title: str, description: str, labels: str, *, token: str = BOT_TOKEN
    ) -> int:
        with self._lock:
            return self._issue(title, description, labels, self.tokens[token].user)["iid"]

    def issues(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(issue) for issue in self.issues_by_iid.values()]

    def fail_next(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(route, []).extend(faults)

    @property
    def write_calls(self) -> int:
        return sum(count for route, count in self.calls.items() if not route.startswith("GET"))

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> GitLabFake:
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
            ssl_certfile=self.tls[0] if self.tls else None,
            ssl_keyfile=self.tls[1] if self.tls else None,
        )
        self._server = uvicorn.Server(config)
        self._serving = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._serving.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._serving.is_alive():
                raise RuntimeError("the GitLab fake did not start")
            time.sleep(0.005)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        self._socket = sock
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._serving.join(10)
        self._socket.close()

    # -- the app ---------------------------------------------------------------------------

    ROUTES = (
        ("GET", "/user", "_me"),
        ("GET", "/projects/{id}/merge_requests/{iid:int}", "_get_mr"),
        ("GET", "/projects/{id}/repository/commits/{sha}/merge_requests", "_commit_mrs"),
        ("GET", "/projects/{id}/merge_requests/{iid:int}/notes", "_list_notes"),
        ("POST", "/projects/{id}/merge_requests/{iid:int}/notes", "_create_note"),
        ("PUT", "/projects/{id}/merge_requests/{iid:int}/notes/{note_id:int}", "_update_note"),
        ("GET", "/projects/{id}/issues", "_list_issues"),
        ("POST", "/projects/{id}/issues", "_create_issue"),
        ("GET", "/projects/{id}/issues/{iid:int}", "_get_issue"),
        ("PUT", "/projects/{id}/issues/{iid:int}", "_update_issue"),
        ("GET", "/projects/{id}/issues/{iid:int}/notes", "_list_notes"),
        ("POST", "/projects/{id}/issues/{iid:int}/notes", "_create_note"),
        ("PUT", "/projects/{id}/issues/{iid:int}/notes/{note_id:int}", "_update_note"),
    )

    def app(self) -> Starlette:
        routes = [
            Route("/api/v4" + path, self._endpoint(method, path, handler), methods=[method])
            for method, path, handler in self.ROUTES
        ]
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
            try:
                token = self._authenticate(request, route)
                limited = self._rack_attack()
                if limited is not None:
                    return limited
                fault = self._next_fault(route)
                if fault is not None:
                    return JSONResponse(fault.body, fault.status, headers=fault.headers)
                self._project(request)
                payload = json.loads(raw) if raw else {}
                status, data, headers = getattr(self, handler)(request, token, payload)
                limits = {} if headers.pop("__bare__", None) else self._limit_headers()
                return JSONResponse(data, status, headers={**limits, **headers})
            except _Refusal as refusal:
                return JSONResponse(refusal.body, refusal.status, headers=self._limit_headers())

    def _authenticate(self, request: Request, route: str) -> Token:
        headers = request.headers
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        given = headers.get("private-token") or headers.get("job-token") or bearer
        token = self.tokens.get(given or "")
        if token is None:
            raise _Refusal(401, "401 Unauthorized")
        if token.job != ("job-token" in headers):
            raise _Refusal(401, "401 Unauthorized")
        if token.job and route not in JOB_ROUTES:
            raise _Refusal(404, "404 Not Found")
        return token

    def _project(self, request: Request) -> None:
        project = request.path_params.get("id")
        if project is not None and project != str(PROJECT_ID):
            raise _Refusal(404, "404 Project Not Found")

    def _next_fault(self, route: str) -> Fault | None:
        queue = self.faults.get(route)
        return queue.pop(0) if queue else None

    def _rack_attack(self) -> Response | None:
        if self.rack_limit is None:
            return None
        now = self.clock()
        start, used = self._window
        if now - start >= 60:
            start, used = now, 0
        if used >= self.rack_limit:
            headers = {
                **self._limit_headers(),
                "Retry-After": str(int(start + 60 - now) or 1),
                "RateLimit-ResetTime": time.strftime(
                    "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(start + 60)
                ),
            }
            return PlainTextResponse("Retry later\n", 429, headers=headers)
        self._window = (start, used + 1)
        return None

    def _limit_headers(self) -> dict[str, str]:
        if self.rack_limit is None:
            return {}
        start, used = self._window
        return {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(self.rack_limit),
            "RateLimit-Observed": str(used),
            "RateLimit-Remaining": str(max(0, self.rack_limit - used)),
            "RateLimit-Reset": str(int(start + 60)),
        }

    # -- handlers --------------------------------------------------------------------------

    def _me(self, request: Request, token: Token, payload: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, token.user.data(), {}

    def _get_mr(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, _public(self._mr(request.path_params["iid"])), {}

    def _commit_mrs(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        sha = request.path_params["sha"]
        if sha not in self.commits:
            raise _Refusal(404, "404 Commit Not Found")
        found = [
            _public(each)
            for each in self.merge_requests.values()
            if sha in (each["sha"], each["merge_commit_sha"], each["squash_commit_sha"])
            or (each["state"] == "opened" and sha in each["_commits"])
        ]
        return self._paged(request, found)

    def _list_notes(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        where = self._thread(request)
        notes = [n for n in self.all_notes.values() if n["_thread"] == where]
        key = request.query_params.get("order_by", "created_at")
        notes.sort(key=lambda note: (note[key], note["id"]))
        if request.query_params.get("sort", "desc") == "desc":
            notes.reverse()
        return self._paged(request, [_public(note) for note in notes])

    def _create_note(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._may_write(token)
        thread, iid = self._thread(request)
        if self.notes_limit is not None:
            now = self.clock()
            self._note_times = [at for at in self._note_times if now - at < 60]
            if len(self._note_times) >= self.notes_limit:
                return 429, {"message": {"error": TOO_MANY}}, {"__bare__": "1"}
            self._note_times.append(now)
        body = self._note_body(payload)
        return 201, _public(self._note(thread, iid, body, token.user, False)), {}

    def _update_note(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._may_write(token)
        where = self._thread(request)
        note = self.all_notes.get(request.path_params["note_id"])
        if note is None or note["_thread"] != where:
            raise _Refusal(404, "404 Note Not Found")
        if note["author"]["id"] != token.user.id:
            raise _Refusal(403, "403 Forbidden")
        note.update(body=self._note_body(payload), updated_at=self._now())
        return 200, _public(note), {}

    def _list_issues(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        query = request.query_params
        wanted = {label for label in query.get("labels", "").split(",") if label}
        state = query.get("state", "all")
        author = query.get("author_id")
        found = [
            _public(issue)
            for issue in sorted(self.issues_by_iid.values(), key=lambda i: -i["iid"])
            if wanted <= set(issue["labels"])
            and state in ("all", issue["state"])
            and (author is None or str(issue["author"]["id"]) == author)
        ]
        return self._paged(request, found)

    def _create_issue(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._may_write(token)
        if not payload.get("title"):
            raise _Refusal(400, '400 (Bad request) "title" not given')
        description = self._description(payload)
        issue = self._issue(payload["title"], description, payload.get("labels", ""), token.user)
        return 201, _public(issue), {}

    def _get_issue(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, _public(self._issue_of(request.path_params["iid"])), {}

    def _update_issue(
        self, request: Request, token: Token, payload: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._may_write(token)
        issue = self._issue_of(request.path_params["iid"])
        if "description" in payload:
            issue["description"] = self._description(payload)
        if "title" in payload:
            issue["title"] = payload["title"]
        if "labels" in payload:
            issue["labels"] = self._labels(payload["labels"])
        if "add_labels" in payload:
            issue["labels"] = sorted({*issue["labels"], *self._labels(payload["add_labels"])})
        event = payload.get("state_event")
        if event in ("close", "reopen"):
            issue["state"] = "closed" if event == "close" else "opened"
        issue["updated_at"] = self._now()
        return 200, _public(issue), {}

    # -- helpers ---------------------------------------------------------------------------

    def _may_write(self, token: Token) -> None:
        if token.role < ROLES["reporter"]:
            raise _Refusal(403, "403 Forbidden")

    def _thread(self, request: Request) -> tuple[str, int]:
        iid = request.path_params["iid"]
        if "/merge_requests/" in request.url.path:
            self._mr(iid)
            return "merge_requests", iid
        self._issue_of(iid)
        return "issues", iid

    def _mr(self, iid: int) -> dict[str, Any]:
        if iid not in self.merge_requests:
            raise _Refusal(404, "404 Not found")
        return self.merge_requests[iid]

    def _issue_of(self, iid: int) -> dict[str, Any]:
        if iid not in self.issues_by_iid:
            raise _Refusal(404, "404 Not found")
        return self.issues_by_iid[iid]

    def _note_body(self, payload: Any) -> str:
        body = payload.get("body")
        if not isinstance(body, str) or not body:
            raise _Refusal(400, '400 (Bad request) "body" not given')
        if len(body) > NOTE_LIMIT:
            raise _Refusal(400, 'Note {:note=>["is too long (maximum is 1000000 characters)"]}')
        return body

    def _description(self, payload: Any) -> str:
        text = payload.get("description") or ""
        if len(text) > DESCRIPTION_LIMIT:
            raise _Refusal(400, {"description": ["is too long (maximum is 1048576 characters)"]})
        return str(text)

    def _labels(self, text: str) -> list[str]:
        labels = sorted({label.strip() for label in str(text).split(",") if label.strip()})
        self.labels.update(labels)
        return labels

    def _note(self, thread: str, iid: int, body: str, author: User, system: bool) -> dict[str, Any]:
        now = self._now()
        note = {
            "id": next(self._ids),
            "type": None,
            "body": body,
            "author": author.data(),
            "created_at": now,
            "updated_at": now,
            "system": system,
            "noteable_id": iid,
            "noteable_type": "MergeRequest" if thread == "merge_requests" else "Issue",
            "noteable_iid": iid,
            "resolvable": False,
            "internal": False,
            "_thread": (thread, iid),
        }
        self.all_notes[note["id"]] = note
        return note

    def _issue(self, title: str, description: str, labels: str, author: User) -> dict[str, Any]:
        iid = next(self._issue_iids)
        now = self._now()
        issue = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": PROJECT_ID,
            "title": title,
            "description": description,
            "state": "opened",
            "labels": self._labels(labels),
            "author": author.data(),
            "created_at": now,
            "updated_at": now,
            "web_url": f"https://gitlab.example.cn/g/bots/-/issues/{iid}",
        }
        self.issues_by_iid[iid] = issue
        return issue

    def _paged(self, request: Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        query = dict(request.query_params)
        per_page = min(max(int(query.get("per_page", "20")), 1), 100)
        page = max(int(query.get("page", "1")), 1)
        pages = max(1, -(-len(items) // per_page))
        base = str(request.url.replace(query=""))

        def link(number: int) -> str:
            return f"<{base}?{urlencode({**query, 'page': str(number)})}>"

        links = []
        if page > 1:
            links += [f'{link(page - 1)}; rel="prev"', f'{link(1)}; rel="first"']
        if page < pages:
            links.append(f'{link(page + 1)}; rel="next"')
        links.append(f'{link(pages)}; rel="last"')
        headers = {
            "Link": ", ".join(links),
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": str(page + 1) if page < pages else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
            "x-total": str(len(items)),
            "x-total-pages": str(pages),
        }
        return 200, items[(page - 1) * per_page : page * per_page], headers

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock()))


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}
