"""Serving an ASGI application on loopback from a background thread (the emulator, the Dify
stand-in).

Start-up binds the listening socket first (so a busy port is an :class:`EmulatorError` right
away), then runs uvicorn on it in a daemon thread and waits until uvicorn reports
``started``. Stop asks uvicorn to exit and joins the thread. Nothing is logged below WARNING
and uvicorn never touches the process's logging configuration or signal handlers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from provisioner.errors import EmulatorError

STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class ThreadedServer:
    """``app`` served by uvicorn on ``host:port`` (0: a free port) in a daemon thread named
    ``thread_name``; ``what`` names the server in errors ("the emulator"). ``http`` is
    uvicorn's HTTP protocol (a class, or "h11")."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        thread_name: str,
        what: str,
        http: Any = "h11",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.thread_name = thread_name
        self.what = what
        self.http = http
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    def start(self) -> str:
        """Serve in the background; returns the base URL once uvicorn is listening."""
        try:
            self._socket = listen(self.host, self.port)
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.url = ""

    def _serve(self) -> None:
        assert self._socket is not None
        config = uvicorn.Config(
            self.app,
            http=self.http,
            ws="none",
            lifespan="off",
            loop="asyncio",  # the same loop everywhere, uvloop installed or not
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        sock = self._socket
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name=self.thread_name, daemon=True
        )
        self._thread.start()
        self._wait_until_started()
        bound_host, bound_port = sock.getsockname()[:2]
        self.port = bound_port
        self.url = f"http://{url_host(bound_host)}:{bound_port}"

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start(); never an unhandled thread error
            self._failure = exc

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                reason = f": {self._failure}" if self._failure else ""
                raise EmulatorError(
                    f"{self.what} stopped while starting{reason}",
                    hint="re-run with --debug, or check the host and port",
                ) from self._failure
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"{self.what} did not start within {STARTUP_TIMEOUT_SECONDS:g} seconds",
                    hint="the machine may be overloaded; try again",
                )
            time.sleep(0.005)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; EmulatorError when it cannot be bound."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise EmulatorError(f"cannot resolve emulator host {host!r}", hint="use 127.0.0.1") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise EmulatorError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another port, or 0 for a free one",
        ) from exc
    sock.setblocking(False)
    return sock


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (an IPv6 address in brackets)."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    return host
