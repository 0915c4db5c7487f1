"""A stateful stand-in for GitLab's Terraform state API, serving real HTTP on 127.0.0.1.

Written from GitLab's ``lib/api/terraform/state.rb`` and ``Terraform::RemoteStateHandler``
(the assumptions are listed in docs/state.md, "GitLab-managed state: what provisioner assumes"):

* ``GET /api/v4/projects/:id/terraform/state/:name``: the newest version's bytes; 204 for a
  state that exists without a version (made by a lock); 404 ``{"message":"404 Not Found"}``
  when there is no state. Developer role (``read_terraform_state``).
* ``POST …/:name[?ID=]`` (body: the document): Maintainer role. Empty body → 204; larger than
  ``max_state_size`` → 413; the lock must match (``ID`` = the lock's ID, or neither) else
  409; the version is the body's top-level ``serial`` (Grape merges a JSON body into the
  params), else the newest + 1; a version that exists → 422.
* ``POST …/:name/lock`` (JSON ``ID, Operation, Info, Who, Version, Created, Path``, all
  required; ``ID`` at most 255 characters → else 400): creates the state when missing; 200,
  or 409 when locked (even by the same ID); either way the body is the request's
  ``Operation, Info, Version, Path`` with the *stored* ``ID``, ``Who`` (the username of the
  token that took the lock) and ``Created``.
* ``DELETE …/:name/lock[?ID=]``: no ID = force unlock; an ID that is not the lock's → 409.
* ``GET …/:name/versions/:serial``: that version's bytes, else 404.
* Tokens: ``PRIVATE-TOKEN: t``, ``Authorization: Bearer t`` or basic auth with the token's
  username; a job token only as basic auth ``gitlab-ci-token:<token>`` (a ``JOB-TOKEN``
  header is not taken on these routes: 401). No or unknown token → 401 ``{"message":"401
  Unauthorized"}``; a user who is not a member (or a job token of another project) → 404
  ``{"message":"404 Project Not Found"}``; too low a role → 403 ``{"message":"403
  Forbidden"}``. ``:id`` is the numeric id or the URL-encoded path.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

Role = Literal["guest", "reporter", "developer", "maintainer", "owner"]
ROLES: dict[str, int] = {
    "guest": 10,
    "reporter": 20,
    "developer": 30,
    "maintainer": 40,
    "owner": 50,
}
LOCK_FIELDS = ("ID", "Operation", "Info", "Who", "Version", "Created", "Path")


@dataclass
class Token:
    username: str
    role: Role
    job: bool = False
    """A job token: GitLab takes it only as basic auth on these routes."""
    project: str | None = None
    """A job token's project (other projects: 404)."""


@dataclass
class TerraformState:
    versions: dict[int, bytes] = field(default_factory=dict)
    lock_id: str | None = None
    locked_by: str | None = None
    locked_at: str | None = None


@dataclass
class Project:
    id: str
    path: str
    states: dict[str, TerraformState] = field(default_factory=dict)


class GitLabStateFake:
    """The stand-in (see the module docstring); ``api_url`` is its ``…/api/v4``."""

    def __init__(
        self,
        project_id: str = "42",
        path: str = "ops/bots",
        *,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.project = Project(project_id, path)
        self.tokens: dict[str, Token] = {}
        self.max_state_size = 0
        """``max_terraform_state_size_bytes`` (0: unlimited)."""
        self.requests: list[tuple[str, str, str]] = []
        """(method, path, how the token came) of every request, in order."""
        self.fail_next: list[int] = []
        """Statuses the next requests answer with instead (a 5xx for the retry tests)."""
        self.mutex = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (certificate, key): serve HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.api_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}/api/v4"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_token(self, value: str, username: str, role: Role, *, job: bool = False) -> None:
        self.tokens[value] = Token(username, role, job, self.project.id if job else None)

    def state(self, name: str) -> TerraformState | None:
        return self.project.states.get(name)

    def lock_state(self, name: str, lock_id: str, username: str) -> None:
        """Lock ``name`` as another client would (a Terraform run, a killed job)."""
        with self.mutex:
            state = self.project.states.setdefault(name, TerraformState())
            state.lock_id, state.locked_by, state.locked_at = lock_id, username, _now()

    # --- requests -----------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        token, how = self._token(request)
        self.requests.append((method, url.path, how))
        if self.fail_next:
            self._reply(request, self.fail_next.pop(0), {"message": "500 Internal Server Error"})
            return
        status, answer = self._route(method, url.path, query, body, token, request)
        self._reply(request, status, answer)

    def _token(self, request: BaseHTTPRequestHandler) -> tuple[Token | None, str]:
        private = request.headers.get("PRIVATE-TOKEN")
        if private is not None:
            found = self.tokens.get(private)
            return (found if found and not found.job else None), "private-token"
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            found = self.tokens.get(authorization[7:])
            return (found if found and not found.job else None), "bearer"
        if authorization.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                return None, "basic"
            found = self.tokens.get(secret)
            if found is None:
                return None, "basic"
            if found.job:
                return (found if user == "gitlab-ci-token" else None), "basic-job"
            return (found if user == found.username else None), "basic"
        if request.headers.get("JOB-TOKEN") is not None:
            return None, "job-token-header"  # not taken on the Terraform state routes
        return None, "none"

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        token: Token | None,
        request: BaseHTTPRequestHandler,
    ) -> tuple[int, object]:
        parts = path.split("/")
        # /api/v4/projects/:id/terraform/state/:name[/lock | /versions/:serial]
        if len(parts) < 8 or parts[1:3] != ["api", "v4"] or parts[3] != "projects":
            return 404, {"error": "404 Not Found"}
        if parts[5:7] != ["terraform", "state"]:
            return 404, {"error": "404 Not Found"}
        if token is None:
            return 401, {"message": "401 Unauthorized"}
        project_id, name, rest = unquote(parts[4]), unquote(parts[7]), parts[8:]
        if project_id not in (self.project.id, self.project.path) or "/" in name or not name:
            return 404, {"message": "404 Project Not Found"}
        if token.job and token.project != self.project.id:
            return 404, {"message": "404 Project Not Found"}
        if ROLES[token.role] < ROLES["developer"]:
            return 403, {"message": "403 Forbidden"}
        writes = method != "GET"
        if writes and ROLES[token.role] < ROLES["maintainer"]:
            return 403, {"message": "403 Forbidden"}
        with self.mutex:
            if rest == []:
                return self._state(method, name, query, body)
            if rest == ["lock"] and method in ("POST", "DELETE"):
                return self._lock(method, name, query, body, token, request)
            if len(rest) == 2 and rest[0] == "versions" and rest[1].isdigit() and method == "GET":
                state = self.project.states.get(name)
                found = state.versions.get(int(rest[1])) if state else None
                return (200, found) if found is not None else (404, {"message": "404 Not Found"})
        return 404, {"error": "404 Not Found"}

    def _state(
        self, method: str, name: str, query: dict[str, str], body: bytes
    ) -> tuple[int, object]:
        state = self.project.states.get(name)
        if method == "GET":
            if state is None:
                return 404, {"message": "404 Not Found"}
            if not state.versions:
                return 204, None
            return 200, state.versions[max(state.versions)]
        if method != "POST":
            return 405, {"message": "405 Method Not Allowed"}
        if not body:
            return 204, None
        if self.max_state_size and len(body) > self.max_state_size:
            return 413, {"message": "413 Request Entity Too Large"}
        state = self.project.states.setdefault(name, TerraformState())
        lock_id = query.get("ID")
        if not (state.lock_id is None and lock_id is None) and state.lock_id != lock_id:
            return 409, {"message": "409 Conflict"}
        version = _serial(body)
        if version is None:
            version = max(state.versions, default=-1) + 1
        if version in state.versions:
            return 422, {"message": "Version has already been taken"}
        state.versions[version] = body
        return 200, None

    def _lock(
        self,
        method: str,
        name: str,
        query: dict[str, str],
        body: bytes,
        token: Token,
        request: BaseHTTPRequestHandler,
    ) -> tuple[int, object]:
        state = self.project.states.setdefault(name, TerraformState())
        if method == "DELETE":
            lock_id = query.get("ID")
            if lock_id is not None and state.lock_id != lock_id:
                return 409, None
            state.lock_id = state.locked_by = state.locked_at = None
            return 200, None
        try:
            info = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "ID is missing"}
        if not isinstance(info, dict):
            return 400, {"error": "ID is missing"}
        missing = [key for key in LOCK_FIELDS if not isinstance(info.get(key), str)]
        if missing:
            return 400, {"error": ", ".join(f"{key} is missing" for key in missing)}
        if len(info["ID"]) > 255:
            return 400, {"error": "ID must be at the most 255 characters long"}
        status = 200
        if state.lock_id is not None:
            status = 409
        else:
            state.lock_id, state.locked_by, state.locked_at = info["ID"], token.username, _now()
        answer = {key: info[key] for key in ("Operation", "Info", "Version", "Path")}
        answer.update({"ID": state.lock_id, "Who": state.locked_by, "Created": state.locked_at})
        return status, answer

    def _reply(self, request: BaseHTTPRequestHandler, status: int, answer: object) -> None:
        data = answer if isinstance(answer, bytes) else b""
        if answer is not None and not isinstance(answer, bytes):
            data = json.dumps(answer).encode()
        request.send_response(status)
        if data and not isinstance(answer, bytes):
            request.send_header("Content-Type", "application/json")
        elif data:
            request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def _serial(body: bytes) -> int | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    serial = document.get("serial") if isinstance(document, dict) else None
    return serial if isinstance(serial, int) and not isinstance(serial, bool) else None


def _now() -> str:
    """A lock time as GitLab's JSON gives it (ActiveSupport: milliseconds, ``Z``)."""
    return (
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{datetime.now(UTC).microsecond // 1000:03d}Z"
    )


@contextmanager
def gitlab_state_fake() -> Iterator[GitLabStateFake]:
    fake = GitLabStateFake()
    try:
        yield fake
    finally:
        fake.close()
