"""``EmulatorServer``: the emulator served by uvicorn in a background thread.

Start-up opens the database, then serves through
:class:`~provisioner.emulator.serving.ThreadedServer` (socket bound first, uvicorn in a daemon
thread). Stop joins the thread, closes the database and removes a temporary database.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from provisioner.dify.routing import DifyRoute
from provisioner.emulator.admission.ratelimit import SlidingWindowLimiter
from provisioner.emulator.admission.signature import SignatureVerifier
from provisioner.emulator.app import (
    TRANSPORT_STATE_KEY,
    EmulatorState,
    build_app,
    collect_stats,
    reset_stats,
)
from provisioner.emulator.bots.profile import Profile
from provisioner.emulator.dify.apps import DifyApp
from provisioner.emulator.dify.server import DifyStandIn
from provisioner.emulator.faults import FaultConfig, FaultInjector
from provisioner.emulator.im.messages import MessageStore
from provisioner.emulator.im.publish import message_routes
from provisioner.emulator.im.runtime import DEFAULT_CALLBACK_TIMEOUT, MessageRuntime
from provisioner.emulator.serving import ThreadedServer
from provisioner.emulator.store import BotStore
from provisioner.errors import ConfigError, EmulatorError

DEFAULT_RATE_LIMIT = 100
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that hands each request its transport (in ``scope["state"]``).

    The emulator needs it to drop a connection after committing a write, without answering.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.app_state = {**self.app_state, TRANSPORT_STATE_KEY: transport}
        super().connection_made(transport)


def generated_app() -> dict[str, str]:
    """One new app key and secret."""
    return {f"emu-{secrets.token_hex(4)}": secrets.token_hex(16)}


class EmulatorServer:
    """A local RongCloud bot API on loopback; use it as a context manager.

    ``apps`` maps app key to secret; ``None`` reuses the apps stored in an existing ``db_path``
    or generates one app. ``db_path=None`` keeps the bots in a temporary SQLite file that is
    removed at stop. ``port=0`` picks a free port; :attr:`url` is valid once started.
    ``strict_signatures`` refuses nonces over 18 characters and replayed nonces, as RongCloud's
    docs say (by default both pass, as they evidently do for RongCloud's own clients).
    ``profile`` answers where RongCloud's docs are silent (default: the emulator's
    assumptions); ``mask_api_keys`` is its ``api_key_on_read: masked``.

    ``dify_apps`` starts a Dify stand-in (:attr:`dify`) next to the emulator: a published
    message's Dify calls off this machine go to it (the local rule of
    :mod:`provisioner.dify.routing`). ``callback_timeout`` bounds each webhook and Dify call.
    """

    def __init__(
        self,
        *,
        apps: Mapping[str, str] | None = None,
        db_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        mask_api_keys: bool = False,
        strict_signatures: bool = False,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        dify_apps: Sequence[DifyApp] | None = None,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        profile: Profile | None = None,
    ) -> None:
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 1:
            raise ConfigError(
                f"emulator rate limit must be a whole number of at least 1, got {rate_limit!r}",
                hint="RongCloud's documented limit is 100 calls per second",
            )
        if apps is not None and not apps:
            raise ConfigError("emulator needs at least one app", hint="pass app_key -> secret")
        self.apps: dict[str, str] = dict(apps) if apps is not None else _apps_for(db_path)
        self.db_path = db_path
        self.host = host
        self.port = port
        self.profile = profile or Profile()
        if mask_api_keys:
            self.profile = self.profile.changed("--mask-api-keys", api_key_on_read="masked")
        self.strict_signatures = strict_signatures
        self.url = ""
        self._faults = FaultInjector(faults)
        self._limiter = SlidingWindowLimiter(rate_limit)
        self.dify_apps = list(dify_apps or ())
        self.callback_timeout = callback_timeout
        self.dify: DifyStandIn | None = None
        self._serving: ThreadedServer | None = None
        self._store: BotStore | None = None
        self._messages: MessageStore | None = None
        self._runtime: MessageRuntime | None = None
        self._temp_db: Path | None = None

    @classmethod
    def local(
        cls,
        app_name: str,
        base_dir: Path,
        *,
        dify_apps: Sequence[DifyApp] | None = None,
        profile: Profile | None = None,
    ) -> EmulatorServer:
        """The emulator of ``endpoint: local``: bots and secret kept under ``base_dir``.

        Database :func:`local_database`, app key ``local-<app_name>``; the secret is generated
        once and stored in that database. ``dify_apps``: the app's Dify stand-in;
        ``profile``: its ``emulator.profile``.
        """
        db_path = local_database(app_name, base_dir)
        app_key = f"local-{app_name}"
        store = BotStore.open(db_path)
        try:
            secret = store.stored_apps().get(app_key) or secrets.token_hex(16)
            store.save_apps({app_key: secret})
        finally:
            store.close()
        return cls(apps={app_key: secret}, db_path=db_path, dify_apps=dify_apps, profile=profile)

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Serve in a background thread; returns once uvicorn is listening."""
        if self._serving is not None:
            raise EmulatorError("the emulator is already running", hint="stop it first")
        try:
            database = self._database_path()
            self._store = BotStore.open(database)
            self._store.save_apps(self.apps)
            self._messages = MessageStore.open(database)
            if self.dify_apps:
                self.dify = DifyStandIn(self.dify_apps, db_path=database).start()
            state = self._state()
            self._runtime = MessageRuntime(
                bots=self._store,
                messages=self._messages,
                apps=self.apps,
                route=DifyRoute(self.dify.api_base if self.dify else None),
                callback_timeout=self.callback_timeout,
            )
            self._serving = ThreadedServer(
                build_app(state, message_routes(state, self._runtime)),
                host=self.host,
                port=self.port,
                thread_name="provisioner-emulator",
                what="the emulator",
                http=DroppableH11Protocol,
            )
            self.url = self._serving.start()
            self.port = self._serving.port
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, join the thread, close the database (idempotent)."""
        if self._serving is not None:
            self._serving.stop()
        if self.dify is not None:
            self.dify.stop()
        for store in (self._messages, self._store):
            if store is not None:
                store.close()
        if self._temp_db is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self._temp_db}{suffix}").unlink(missing_ok=True)
        self._serving = self._store = self._messages = self._runtime = self._temp_db = None
        self.dify = None
        self.url = ""

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # run-time controls --------------------------------------------------------------------

    def set_faults(self, **fields: Any) -> None:
        """Change fault settings (names as in :class:`FaultConfig`); ConfigError when invalid."""
        self._faults.set(**fields)

    @property
    def faults(self) -> FaultConfig:
        """The current fault settings."""
        return self._faults.config

    def stats(self) -> dict[str, Any]:
        """Counts per ``"<app key> <path>"``: calls (accepted), max_per_second, rate_limited,
        committed (writes in the database), disconnected (client gone before its body was
        read: nothing done); and the fault counters. ``docs/emulator.md`` defines each."""
        return collect_stats(self._limiter, self._faults)

    def reset_stats(self) -> None:
        """Zero every counter (and the rate windows)."""
        reset_stats(self._limiter, self._faults)

    def conversation(self, app_key: str, user: str, bot: str) -> dict[str, Any]:
        """``user``'s conversation with ``bot``: what ``GET /_emulator/conversation`` answers
        (without ``code``)."""
        if self._runtime is None:
            raise EmulatorError("the emulator is not running", hint="start it first")
        return self._runtime.conversation(app_key, user, bot)

    # internals ----------------------------------------------------------------------------

    def _database_path(self) -> Path:
        if self.db_path is not None:
            return self.db_path
        handle, name = tempfile.mkstemp(prefix="provisioner-emulator-", suffix=".sqlite3")
        os.close(handle)
        self._temp_db = Path(name)
        return self._temp_db

    def _state(self) -> EmulatorState:
        assert self._store is not None
        return EmulatorState(
            store=self._store,
            verifier=SignatureVerifier(
                self.apps,
                strict=self.strict_signatures,
                replay_code=self.profile.nonce_reuse_code,
            ),
            limiter=self._limiter,
            faults=self._faults,
            profile=self.profile,
        )


def local_database(app_name: str, base_dir: Path) -> Path:
    """``base_dir/.provisioner/emulator/<app_name>.sqlite3``: the database of the emulator
    (and Dify stand-in) of ``endpoint: local``; ConfigError for a name that is no file name."""
    if not _APP_NAME.match(app_name):
        raise ConfigError(
            f"app name {app_name!r} cannot name a local emulator database",
            hint="use letters, digits, '.', '_' and '-' (at most 64 characters)",
        )
    return base_dir / ".provisioner" / "emulator" / f"{app_name}.sqlite3"


def _apps_for(db_path: Path | None) -> dict[str, str]:
    """Apps stored in an existing database, else one generated app."""
    if db_path is not None and db_path.exists():
        store = BotStore.open(db_path)
        try:
            stored = store.stored_apps()
        finally:
            store.close()
        if stored:
            return stored
    return generated_app()
