"""``provisioner probe``: settle what RongCloud's docs leave open against a real app.

The probe creates bots named ``probe-<random>`` (never touching another bot), runs one
experiment per observation of :mod:`provisioner.rongcloud.observations`, and deletes every
bot it created (or tried to create) whatever happens: an answered error, a lost connection,
Ctrl-C or SIGTERM (further ones do not stop the clean-up). It refuses to start without
``yes`` or when the app lacks room for its two bots. The experiments, in order:

1. ``numeric_metadata``: create bot A with ``metadata: {"probe": 1}`` (a number); refused,
   A is created with ``"1"``. A has a webhook (``objectNames``, ``events``) and a Dify
   integration whose ``auth.apiKey`` is a made-up ``app-probe…`` value, not a secret;
2. ``api_key_on_read``: read A back: that key as sent, masked, or absent;
3. ``duplicate_create``: create A again;
4. ``update_omitted_fields``: update A leaving out ``metadata`` and the webhook's
   ``objectNames`` and ``events``, and read it back: gone (replace), kept (patch), refused;
5. ``get_unknown_id`` / ``delete_absent``: get and delete a ``probe-…`` id never created;
6. ``two_integrations_same_type``: create bot B with two webhooks;
7. ``nonce_reuse``: the same signed get of A sent twice, nonce and timestamp unchanged;
8. ``body_limit_bytes``: gets of A padded with spaces: 1 MiB first (taken: null), then a
   binary search for the largest body the server takes (refused = code 1508 or HTTP 413);
9. ``bot_quota``: fill the app up to 10 bots with ``probe-…`` bots, then create one more.

Any other failure ends the probe (after the clean-up) with its error.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from provisioner.errors import ApiError, ConfigError, ProvisionerError
from provisioner.rongcloud.client import CREATE, DELETE, GET, UPDATE, RongCloudClient
from provisioner.rongcloud.observations import (
    BODY_LIMIT_CEILING,
    FORMAT_VERSION,
    Observations,
    ProbeReport,
    error,
)
from provisioner.rongcloud.ratelimit import RATE_LIMITERS
from provisioner.rongcloud.responses import Answer, read_answer
from provisioner.rongcloud.signing import REQUEST_ID_HEADER, new_request_id, sign

PREFIX = "probe-"
BOTS_NEEDED = 2
"""Bots A and B exist at once; the quota experiment fills whatever room is left."""
QUOTA = 10
BODY_TOO_LARGE = 1508
PAYLOAD_TOO_LARGE = 413
RAW_ATTEMPTS = 5
"""A raw request answered 429 is sent again (after a second) at most this often."""


@dataclass(frozen=True)
class Target:
    """Where the probe's own raw requests go: what a client of the app was made with."""

    app_key: str
    app_secret: str = field(repr=False)
    host: str


@dataclass
class ProbeRun:
    """The report, and the probe bots a clean-up could not delete (empty: none left)."""

    report: ProbeReport
    left_behind: list[str] = field(default_factory=list)


def probe_name() -> str:
    return f"{PREFIX}{secrets.token_hex(4)}"


def outcome(call: Callable[[], object], ok: str) -> str:
    """``ok`` when ``call`` succeeds, ``error:<code>`` (or the HTTP status) when answered."""
    try:
        call()
    except ApiError as exc:
        return error(exc.code if exc.code is not None else exc.http_status or 0)
    return ok


class Probe:
    """One probe run over ``client`` (see the module docstring); ``target`` for the raw
    requests of the nonce and body-size experiments."""

    def __init__(
        self,
        client: RongCloudClient,
        target: Target,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.target = target
        self.sleep = sleep
        self.created: list[str] = []
        self.left_behind: list[str] = []
        """After a run (or its failure): the probe bots the clean-up could not delete."""
        self.key = f"app-probe{secrets.token_hex(8)}"
        self.bot_a = probe_name()

    def run(self, *, yes: bool) -> ProbeRun:
        """Refuse, or run every experiment and clean up (also on failure and Ctrl-C)."""
        if not yes:
            raise ConfigError(
                "probe creates and deletes bots named probe-<random> in this app",
                hint="run it against a sandbox app, and pass --yes to go ahead",
            )
        existing = len(self.client.query_bots(include_integrations=False))
        if QUOTA - existing < BOTS_NEEDED:
            raise ConfigError(
                f"the app holds {existing} bots: the probe needs room for {BOTS_NEEDED}"
                f" (an app holds at most {QUOTA})",
                hint="probe a sandbox app with at most 8 bots; nothing was created",
            )
        try:
            observations = self._experiments()
        finally:
            self.left_behind = self.clean_up()
        report: ProbeReport = {
            "format_version": FORMAT_VERSION,
            "endpoint": self.target.host,
            "observations": observations,
        }
        return ProbeRun(report, self.left_behind)

    def _experiments(self) -> Observations:
        numeric = self._create_a()
        api_key = self._api_key_on_read()
        duplicate = outcome(lambda: self._create(self._body_a(), track=False), "ok")
        update = self._update_omitted_fields()
        missing = probe_name()
        unknown_get = outcome(
            lambda: self.client.call(GET, {"userIds": [missing]}, read=True), "absent"
        )
        absent_delete = outcome(lambda: self.client.call(DELETE, {"userId": missing}), "ok")
        bot_b = self._body(probe_name(), webhooks=2)
        same_type = outcome(lambda: self._create(bot_b), "accepted")
        nonce = self._nonce_reuse()
        limit = self._body_limit()
        return {
            "update_omitted_fields": update,
            "get_unknown_id": unknown_get,
            "delete_absent": absent_delete,
            "duplicate_create": duplicate,
            "bot_quota": self._quota(),
            "two_integrations_same_type": same_type,
            "numeric_metadata": numeric,
            "api_key_on_read": api_key,
            "body_limit_bytes": limit,
            "nonce_reuse": nonce,
        }

    # -- the experiments --------------------------------------------------------------------

    def _create_a(self) -> str:
        numeric = outcome(lambda: self._create(self._body_a(metadata={"probe": 1})), "accepted")
        if numeric != "accepted":
            self._create(self._body_a())
        return numeric

    def _api_key_on_read(self) -> str:
        (bot,) = self._get(self.bot_a)
        dify = next(item for item in bot.get("integrations", []) if item.get("type") == "dify_chat")
        key = (dify.get("auth") or {}).get("apiKey")
        if not key:
            return "absent"
        return "plain" if key == self.key else "masked"

    def _update_omitted_fields(self) -> str:
        body = self._body_a()
        del body["metadata"]
        webhook = body["integrations"][0]
        del webhook["objectNames"], webhook["events"]
        answered = outcome(lambda: self.client.call(UPDATE, body), "done")
        if answered != "done":
            return answered
        (bot,) = self._get(self.bot_a)
        kept_webhook = next(item for item in bot["integrations"] if item["type"] == "webhook")
        kept = bot.get("metadata") or kept_webhook.get("objectNames") or kept_webhook.get("events")
        return "patch" if kept else "replace"

    def _quota(self) -> str:
        count = len(self.client.query_bots(include_integrations=False))
        answer = "ok"
        for _ in range(max(0, QUOTA - count) + 1):
            answer = outcome(lambda: self._create(self._body(probe_name())), "ok")
            if answer != "ok":
                break
        return answer

    def _nonce_reuse(self) -> str:
        content = self._get_body(self.bot_a)
        headers = sign(self.target.app_key, self.target.app_secret).as_dict()
        first = self._raw(GET, content, headers)
        if not first.ok:
            raise ApiError(
                f"the probe's signed get was refused (HTTP {first.status}, code {first.code})",
                endpoint=GET,
                http_status=first.status,
                code=first.code,
                error_message=first.error_message,
                request_id=first.request_id,
            )
        second = self._raw(GET, content, headers)
        return "accepted" if second.ok else error(second.code or second.status)

    def _body_limit(self) -> int | None:
        base = self._get_body(self.bot_a)
        if not self._too_large(BODY_LIMIT_CEILING, base):
            return None
        low, high = len(base), BODY_LIMIT_CEILING  # low is taken, high is refused
        while high - low > 1:
            middle = (low + high) // 2
            if self._too_large(middle, base):
                high = middle
            else:
                low = middle
        return low

    # -- calls ------------------------------------------------------------------------------

    def _create(self, body: dict[str, Any], *, track: bool = True) -> None:
        if track:
            self.created.append(body["userId"])  # before the call: it may act and not answer
        self.client.call(CREATE, body)

    def _get(self, user_id: str) -> list[dict[str, Any]]:
        bots: list[dict[str, Any]] = self.client.call(GET, {"userIds": [user_id]}, read=True)[
            "bots"
        ]
        return bots

    def _too_large(self, size: int, base: bytes) -> bool:
        """Whether a get of ``size`` bytes (``base`` padded with spaces) is refused for size."""
        headers = sign(self.target.app_key, self.target.app_secret).as_dict()
        answer = self._raw(GET, base[:-1] + b" " * (size - len(base)) + base[-1:], headers)
        return answer.code == BODY_TOO_LARGE or answer.status == PAYLOAD_TOO_LARGE

    def _raw(self, path: str, content: bytes, headers: dict[str, str]) -> Answer:
        """One signed POST with exactly these bytes and headers (429 waits and repeats)."""
        request_id = new_request_id()
        sent = {**headers, "Content-Type": "application/json", REQUEST_ID_HEADER: request_id}
        with httpx.Client(timeout=30.0) as http:
            for _ in range(RAW_ATTEMPTS):
                RATE_LIMITERS.get(self.target.app_key).acquire()
                try:
                    response = http.post(self.target.host + path, content=content, headers=sent)
                except httpx.HTTPError as exc:
                    raise ConfigError(
                        f"the probe's request to {path} got no answer ({type(exc).__name__})",
                        hint="check the network and run the probe again",
                    ) from None
                answer = read_answer(response, request_id, [self.target.app_secret, self.key])
                if not answer.rate_limited:
                    return answer
                self.sleep(1.0)
        return answer

    def clean_up(self) -> list[str]:
        """Delete every bot the probe created; the ids still there afterwards. Another Ctrl-C
        or SIGTERM meanwhile, in a delete or in the check that follows, does not stop it: the
        call it interrupted is sent again."""
        pending = list(dict.fromkeys(self.created))
        while True:
            try:
                return self._clean_up(pending)
            except KeyboardInterrupt:
                continue  # another Ctrl-C: the clean-up goes on where it was

    def _clean_up(self, pending: list[str]) -> list[str]:
        """Delete each of ``pending`` (taken off once its delete is answered), then read which
        probe bots are still there."""
        while pending:
            with contextlib.suppress(ProvisionerError):  # absent, or it stays: the query tells
                self.client.call(DELETE, {"userId": pending[0]})
            pending.pop(0)
        try:
            live = self.client.query_bots(include_integrations=False)
        except ProvisionerError:
            return list(dict.fromkeys(self.created))
        return [bot.userId for bot in live if bot.userId in self.created]

    # -- bodies -----------------------------------------------------------------------------

    def _body_a(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self._body(self.bot_a)
        body["metadata"] = metadata or {"probe": "1"}
        body["integrations"][0].update(objectNames=["RC:TxtMsg"], events=["message:private"])
        body["integrations"].append(
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": self.key},
            }
        )
        return body

    @staticmethod
    def _body(user_id: str, *, webhooks: int = 1) -> dict[str, Any]:
        return {
            "userId": user_id,
            "name": "provisioner probe",
            "type": "probe",
            "profileUrl": "https://example.com/probe.png",
            "integrations": [
                {"type": "webhook", "callbackUrl": f"https://example.com/probe-hook-{number}"}
                for number in range(webhooks)
            ],
        }

    @staticmethod
    def _get_body(user_id: str) -> bytes:
        return ('{"userIds":["' + user_id + '"]}').encode("ascii")
