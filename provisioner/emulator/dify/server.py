"""``DifyStandIn``: the Dify stand-in served on loopback in a background thread, on its own
(tests, ``provisioner check`` of an ``endpoint: local`` app) or next to an emulator."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from provisioner.emulator.dify.app import DifyFaults, StandInState, build_dify_app
from provisioner.emulator.dify.apps import DifyApp
from provisioner.emulator.dify.history import history_routes
from provisioner.emulator.dify.store import DifyStore
from provisioner.emulator.serving import ThreadedServer
from provisioner.errors import ConfigError, EmulatorError

THREAD_NAME = "provisioner-dify"


class DifyStandIn:
    """Dify's Service API for ``apps`` on loopback; use it as a context manager.

    ``db_path`` keeps the conversations in that SQLite file (tables of their own, so it may
    be the emulator's database); ``None`` keeps them in memory. :attr:`api_base` (the
    ``.../v1`` a ``callbackUrl`` names) is valid once started.
    """

    def __init__(
        self,
        apps: Sequence[DifyApp],
        *,
        db_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not apps:
            raise ConfigError(
                "the Dify stand-in needs at least one app",
                hint="list its apps (emulator.dify in app.yaml, or --dify-apps FILE)",
            )
        self.apps = list(apps)
        self.db_path = db_path
        self.host = host
        self.port = port
        self.url = ""
        self._state: StandInState | None = None
        self._serving: ThreadedServer | None = None

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (empty before start)."""
        return f"{self.url}/v1" if self.url else ""

    def start(self) -> DifyStandIn:
        if self._serving is not None:
            raise EmulatorError("the Dify stand-in is already running", hint="stop it first")
        try:
            self._state = StandInState(self.apps, DifyStore.open(self.db_path))
            self._serving = ThreadedServer(
                build_dify_app(self._state, history_routes(self._state)),
                host=self.host,
                port=self.port,
                thread_name=THREAD_NAME,
                what="the Dify stand-in",
            )
            self.url = self._serving.start()
            self.port = self._serving.port
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and close the store (idempotent)."""
        if self._serving is not None:
            self._serving.stop()
        if self._state is not None:
            self._state.store.close()
        self._serving = self._state = None
        self.url = ""

    def __enter__(self) -> DifyStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def set_faults(self, **fields: Any) -> DifyFaults:
        """Change the faults (``busy``, ``quota``, ``stream_error``: see DifyFaults)."""
        return self._running().set_faults(**fields)

    def received(self) -> list[dict[str, Any]]:
        """The generation requests answered so far (path, app name, user, query,
        response_mode, conversation_id, inputs), oldest first; never a key."""
        return list(self._running().received)

    def hits(self) -> dict[str, int]:
        """Requests received per ``"METHOD /v1/path"`` (answered or refused)."""
        return dict(self._running().hits)

    def conversations(self, user: str) -> list[dict[str, object]]:
        """The conversations of ``user``: ``{id, turns, last_query}``, oldest first."""
        return self._running().store.conversations(user)

    def _running(self) -> StandInState:
        if self._state is None:
            raise EmulatorError("the Dify stand-in is not running", hint="start it first")
        return self._state
