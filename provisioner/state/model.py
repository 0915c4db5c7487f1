"""Recorded state: what the tool last applied to one RongCloud app (pure values, no I/O).

The JSON document (``version`` 1), one per app::

    {
      "app": "demo",
      "bots": {
        "assistant-bot": {
          "protect": false,
          "server": {"createdAt": 1700000000000, "updatedAt": 1700000000000},
          "spec": {...canonical spec, secrets as {"sensitive": "hmac-sha256:...",
                    "template": "${DIFY_KEY}"}...}
        }
      },
      "lineage": "0b6f...-uuid4",
      "salt": "64 hex chars",
      "serial": 3,
      "version": 1,
      "last_run": "https://github.com/octo/bots/actions/runs/42",
      "last_plan": "9f2c...sha256 hex"
    }

``lineage`` identifies one history of the state (a new file gets a new one); ``serial`` grows by
one with every write. ``salt`` keys the fingerprints of secrets. ``last_run`` (only when the last
write came from a CI run) links that run, so a refused apply can say who moved the state;
``last_plan`` is the id of the plan whose apply made the last write, so a re-run of an apply
that stopped part way can tell that it carries on the same reviewed plan.
Nothing in here is ever a secret.
"""

from __future__ import annotations

import secrets as _random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NotRequired, TypedDict, cast

from provisioner.errors import StateError
from provisioner.secrets import is_sensitive_value

STATE_VERSION = 1
"""The newest state document version this release reads and writes."""


class RecordedBotDoc(TypedDict):
    """One bot of the state document (:attr:`RecordedBot.data`). ``protect`` and ``server``
    are always written; a document without them reads as false and ``{}``."""

    protect: NotRequired[bool]
    server: NotRequired[dict[str, object]]
    spec: dict[str, Any]
    """The canonical spec (:mod:`provisioner.plan.canonical` owns its shape)."""
    source: NotRequired[str | None]


class RecordedAppDoc(TypedDict):
    """The state document of one app (:attr:`RecordedApp.data`; see the module docstring).
    ``last_run`` and ``last_plan`` are written only when known (``null`` reads as unknown)."""

    app: str
    bots: dict[str, RecordedBotDoc]
    lineage: str
    salt: str
    serial: int
    version: int
    last_run: NotRequired[str | None]
    last_plan: NotRequired[str | None]


class LockHolderDoc(TypedDict):
    """A lock record (:attr:`LockHolder.data`): the optional fields only when known."""

    command: str
    host: str
    pid: int
    started: str
    user: str
    app: NotRequired[str]
    boot_id: NotRequired[str]
    ci_run: NotRequired[str]
    expires: NotRequired[str]
    token: NotRequired[str]


RECORDED_AT = "recordedAt"
"""Key in a recorded bot's ``server`` bookkeeping: when the apply recorded it (ISO 8601 UTC)."""


@dataclass(frozen=True)
class RecordedBot:
    """One managed bot as last applied: its canonical spec (secrets fingerprinted), its
    ``protect`` flag, what the server returned (``createdAt``/``updatedAt``...) with
    :data:`RECORDED_AT`, when this tool recorded it (a create or update answer carries no
    timestamp, so that is what ``state show`` has on every backend), and
    ``source``, the name of the manifest file it was applied from (``assistant.yaml``;
    absent in state written before it was recorded)."""

    spec: dict[str, Any]
    protect: bool = False
    server: dict[str, object] = field(default_factory=dict)
    source: str | None = None

    @property
    def data(self) -> RecordedBotDoc:
        """JSON view as stored in the state file (``source`` only when known)."""
        data: RecordedBotDoc = {"protect": self.protect, "server": self.server, "spec": self.spec}
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True)
class RecordedApp:
    """The recorded state of one app. A value: every change returns a new one."""

    app: str
    lineage: str
    serial: int
    salt: str
    bots: dict[str, RecordedBot]
    version: int = STATE_VERSION
    last_run: str | None = None
    """Link to the CI run that made the last write (None: written outside CI)."""
    last_plan: str | None = None
    """Id of the plan whose apply made the last write (None: not recorded)."""

    @classmethod
    def fresh(cls, app: str) -> RecordedApp:
        """Empty state for an app never applied: new lineage, new random salt, serial 0."""
        return cls(
            app=app,
            lineage=str(uuid.uuid4()),
            serial=0,
            salt=_random.token_hex(32),
            bots={},
        )

    def with_bot(self, user_id: str, bot: RecordedBot | None) -> RecordedApp:
        """A new state with ``user_id`` recorded as ``bot`` (``None`` removes it), serial + 1."""
        bots = dict(self.bots)
        if bot is None:
            bots.pop(user_id, None)
        else:
            bots[user_id] = bot
        return replace(self, bots=bots, serial=self.serial + 1)

    def written_by(self, run: str | None, plan_id: str | None) -> RecordedApp:
        """The same state, recorded as written by the CI run ``run`` (None: outside CI)
        applying the plan ``plan_id``."""
        if (run, plan_id) == (self.last_run, self.last_plan):
            return self
        return replace(self, last_run=run, last_plan=plan_id)

    def without_bots(self, user_ids: Iterable[str]) -> RecordedApp:
        """A new state that no longer records ``user_ids``, serial + 1 (one write)."""
        dropped = set(user_ids)
        bots = {user_id: bot for user_id, bot in self.bots.items() if user_id not in dropped}
        return replace(self, bots=bots, serial=self.serial + 1)

    @property
    def data(self) -> RecordedAppDoc:
        """JSON view as stored in the state file (serialise with sorted keys)."""
        data: RecordedAppDoc = {
            "app": self.app,
            "bots": {user_id: bot.data for user_id, bot in sorted(self.bots.items())},
            "lineage": self.lineage,
            "salt": self.salt,
            "serial": self.serial,
            "version": self.version,
        }
        if self.last_run is not None:
            data["last_run"] = self.last_run
        if self.last_plan is not None:
            data["last_plan"] = self.last_plan
        return data

    @classmethod
    def from_data(cls, data: object, *, where: str) -> RecordedApp:
        """Parse a state document; StateError (naming ``where``) when its shape is wrong.

        A ``version`` newer than :data:`STATE_VERSION` is refused: never guess at a newer format.
        """
        doc = _checked_document(data, where)
        return cls(
            app=doc["app"],
            lineage=doc["lineage"],
            serial=doc["serial"],
            salt=doc["salt"],
            bots={user_id: _bot_of(bot) for user_id, bot in doc["bots"].items()},
            version=doc["version"],
            last_run=doc.get("last_run"),
            last_plan=doc.get("last_plan"),
        )


def _bot_of(doc: RecordedBotDoc) -> RecordedBot:
    return RecordedBot(
        spec=doc["spec"],
        protect=doc.get("protect", False),
        server=doc.get("server", {}),
        source=doc.get("source"),
    )


def _checked_document(data: object, where: str) -> RecordedAppDoc:
    """``data`` once it is checked to be a state document this release reads; StateError
    naming ``where`` and the first problem otherwise."""
    doc = _mapping(data, where, "the document")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _corrupt(where, "'version' must be a positive integer")
    if version > STATE_VERSION:
        raise StateError(
            f"{where}: state version {version} is newer than this provisioner supports"
            f" ({STATE_VERSION})",
            hint="upgrade provisioner; the file was left untouched",
        )
    serial = doc.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise _corrupt(where, "'serial' must be a non-negative integer")
    bots = _mapping(doc.get("bots"), where, "'bots'")
    for key in ("app", "lineage", "salt"):
        _string(doc.get(key), where, f"'{key}'")
    for user_id, bot in bots.items():
        _string(user_id, where, "a bot id")
        _check_bot(bot, where, user_id)
    for key in ("last_run", "last_plan"):
        if doc.get(key) is not None:
            _string(doc.get(key), where, f"'{key}'")
    return cast(RecordedAppDoc, doc)


def _check_bot(data: object, where: str, user_id: str) -> None:
    doc = _mapping(data, where, f"bots.{user_id}")
    if not isinstance(doc.get("protect", False), bool):
        raise _corrupt(where, f"bots.{user_id}.protect must be true or false")
    spec = _mapping(doc.get("spec"), where, f"bots.{user_id}.spec")
    _check_spec(spec, where, f"bots.{user_id}.spec")
    if doc.get("source") is not None:
        _string(doc.get("source"), where, f"bots.{user_id}.source")
    _mapping(doc.get("server", {}), where, f"bots.{user_id}.server")


_TEXT_FIELDS = ("userId", "name", "type", "profileUrl")
_INTEGRATION_FLAGS = ("enabled", "stream", "handleResponse")
_INTEGRATION_LISTS = ("objectNames", "events")


def _check_spec(spec: dict[str, object], where: str, what: str) -> None:
    """The shape the plan relies on: text fields are strings (or fingerprints), ``metadata``
    a mapping of texts, ``integrations`` a list of mappings with a string ``type``."""
    for key in _TEXT_FIELDS:
        if key in spec:
            _text(spec[key], where, f"{what}.{key}")
    if "metadata" in spec:
        for key, value in _mapping(spec["metadata"], where, f"{what}.metadata").items():
            _text(value, where, f"{what}.metadata.{key}")
    if "integrations" in spec:
        integrations = spec["integrations"]
        if not isinstance(integrations, list):
            raise _corrupt(where, f"{what}.integrations must be a JSON array")
        for index, item in enumerate(integrations):
            _check_integration(item, where, f"{what}.integrations[{index}]")


def _check_integration(item: object, where: str, what: str) -> None:
    integration = _mapping(item, where, what)
    _string(integration.get("type"), where, f"{what}.type")
    if "callbackUrl" in integration:
        _text(integration["callbackUrl"], where, f"{what}.callbackUrl")
    for flag in _INTEGRATION_FLAGS:
        if flag in integration and not isinstance(integration[flag], bool):
            raise _corrupt(where, f"{what}.{flag} must be true or false")
    for listing in _INTEGRATION_LISTS:
        if listing in integration:
            values = integration[listing]
            if not isinstance(values, list):
                raise _corrupt(where, f"{what}.{listing} must be a JSON array")
            for index, value in enumerate(values):
                _text(value, where, f"{what}.{listing}[{index}]")
    if "auth" in integration:
        auth = _mapping(integration["auth"], where, f"{what}.auth")
        if "apiKey" in auth:
            _text(auth["apiKey"], where, f"{what}.auth.apiKey")


def _text(value: object, where: str, what: str) -> None:
    """A recorded text: a string, or a secret's fingerprint ``{"sensitive": "hmac-..."}``."""
    if isinstance(value, str):
        return
    if is_sensitive_value(value):
        return
    raise _corrupt(where, f'{what} must be a string or a {{"sensitive": ...}} fingerprint')


def _mapping(value: object, where: str, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _corrupt(where, f"{what} must be a JSON object")
    return value


def _string(value: object, where: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _corrupt(where, f"{what} must be a non-empty string")
    return value


def _corrupt(where: str, detail: str) -> StateError:
    return StateError(
        f"{where}: state file is corrupt: {detail}",
        hint="restore it from git or a backup; provisioner will not overwrite it",
    )


@dataclass(frozen=True)
class LockHolder:
    """Who holds a state lock: the record every backend keeps next to its lock."""

    host: str
    pid: int
    user: str
    command: str
    started: str
    """ISO 8601 UTC time the lock was taken."""
    ci_run: str | None = None
    """Link to the CI run holding the lock (GitHub Actions), when there is one."""
    app: str | None = None
    """The app whose lock this is (records written before this field have none)."""
    boot_id: str | None = None
    """The holder machine's boot id: with ``host``, tells whether ``pid`` can be checked here."""
    expires: str | None = None
    """End of the lease (git backend): the holder renews it; after it the lock may be taken."""
    token: str | None = None
    """Random id of this holding (tells a renewal by the holder from a new holder)."""

    @property
    def data(self) -> LockHolderDoc:
        data: LockHolderDoc = {
            "command": self.command,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "user": self.user,
        }
        if self.app is not None:
            data["app"] = self.app
        if self.boot_id is not None:
            data["boot_id"] = self.boot_id
        if self.ci_run is not None:
            data["ci_run"] = self.ci_run
        if self.expires is not None:
            data["expires"] = self.expires
        if self.token is not None:
            data["token"] = self.token
        return data

    @classmethod
    def from_data(cls, data: object) -> LockHolder | None:
        """The holder in a lock record; None when the record is not one."""
        if not isinstance(data, dict):
            return None
        try:
            host, user, command, started = (
                str(data[key]) for key in ("host", "user", "command", "started")
            )
            pid = data["pid"]
        except KeyError:
            return None
        if not isinstance(pid, int) or isinstance(pid, bool):
            return None

        def optional(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        return cls(
            host=host,
            pid=pid,
            user=user,
            command=command,
            started=started,
            ci_run=optional("ci_run"),
            app=optional("app"),
            boot_id=optional("boot_id"),
            expires=optional("expires"),
            token=optional("token"),
        )

    def describe(self) -> str:
        """One line for messages: ``user@host pid 42 (provisioner apply) since ...``, then
        the CI run when there is one."""
        text = f"{self.user}@{self.host} pid {self.pid} ({self.command}) since {self.started}"
        return f"{text}, CI run {self.ci_run}" if self.ci_run else text
