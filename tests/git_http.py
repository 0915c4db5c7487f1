"""A git smart-HTTP server on loopback that authenticates as GitLab does, for the tests.

``git http-backend`` (shipped with git) runs as CGI behind Python's threading HTTP server and
serves the bare repositories under one root. Access follows GitLab's answers to git over
HTTPS (``Repositories::GitHttpController``), each given here as the credentials it takes:

- every request needs HTTP Basic credentials the server knows (a private project): the CI
  job token (user ``gitlab-ci-token``), a read-only token or a push token; anything else is
  answered ``401`` with ``WWW-Authenticate: Basic realm="GitLab"`` and GitLab's text/plain
  "HTTP Basic: Access denied" body (git shows it as ``remote:`` lines, then "Authentication
  failed");
- a push (``git-receive-pack``, its ref advertisement included) needs the push token;
  known credentials that may not push get ``403`` with "You are not allowed to upload code."
  (what GitLab answers a job token, or a project access token without ``write_repository``).

Only ``127.0.0.1`` is ever bound.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.git_support import git

JOB_USER = "gitlab-ci-token"
PUSH_USER = "provisioner"
DENIED = (
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the"
    " password was incorrect or you're required to use a token instead of a password. If a"
    " token was provided, it was either incorrect, expired, or improperly scoped."
)
NOT_ALLOWED = "You are not allowed to upload code."


@dataclass
class Access:
    """Who may do what: ``(user, password)`` pairs."""

    readers: set[tuple[str, str]] = field(default_factory=set)
    pushers: set[tuple[str, str]] = field(default_factory=set)
    pushes: int = 0
    """Pushes ``git http-backend`` was run for (authenticated receive-pack POSTs)."""


def _backend() -> Path:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    backend = Path(exec_path) / "git-http-backend"
    if not backend.is_file():
        raise RuntimeError(f"git http-backend is not installed ({backend} is missing)")
    return backend


def _credentials(header: str | None) -> tuple[str, str] | None:
    """The Basic credentials of an ``Authorization`` header (the scheme in any case, as RFC
    7235 and Rails read it: git's ``http.extraheader`` from actions/checkout says ``basic``)."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _handler(root: Path, access: Access, backend: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest's output clean

        def _serve(self) -> None:
            body = self._body()
            url = urlsplit(self.path)
            push = "git-receive-pack" in url.path or "service=git-receive-pack" in url.query
            who = _credentials(self.headers.get("Authorization"))
            if who is None or who not in access.readers | access.pushers:
                self._refuse(401, DENIED)
            elif push and who not in access.pushers:
                self._refuse(403, NOT_ALLOWED)
            else:
                if push and self.command == "POST":
                    access.pushes += 1
                self._cgi(url.path, url.query, who[0], body)

        def _body(self) -> bytes:
            """The request body, by Content-Length or chunked (git chunks a large push)."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def _refuse(self, status: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="GitLab"')
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _cgi(self, path: str, query: str, user: str, body: bytes) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": user,
                "REMOTE_ADDR": self.client_address[0],
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(root),
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            result = subprocess.run(
                [str(backend)],
                input=body,
                capture_output=True,
                env=env,
                timeout=120,
                check=False,
            )
            separator = b"\r\n\r\n" if b"\r\n\r\n" in result.stdout else b"\n\n"
            head, _, answer = result.stdout.partition(separator)
            headers = [line.split(":", 1) for line in head.decode("latin-1").splitlines()]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for name, value in headers:
                if name.lower() != "status":
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@dataclass(frozen=True)
class GitHttp:
    """A running server: ``url(path)`` is the http URL of the repository ``root/path``."""

    port: int
    access: Access

    def url(self, path: str, credentials: tuple[str, str] | None = None) -> str:
        userinfo = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.port}/{path}"


@contextmanager
def git_http(root: Path, access: Access) -> Iterator[GitHttp]:
    """Serve the bare repositories under ``root`` on an ephemeral loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, access, _backend()))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="git-http", daemon=True)
    thread.start()
    try:
        yield GitHttp(server.server_address[1], access)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def allow_pushes(bare: Path) -> None:
    """Let ``git http-backend`` run receive-pack for ``bare`` (it refuses by default unless
    REMOTE_USER is set; set explicitly so the refusals above are the server's own)."""
    git(bare, "config", "http.receivepack", "true")
