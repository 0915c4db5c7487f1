"""The signed RongCloud bot API client: one ``httpx.Client``, rate limited, retrying, failing over.

Retry policy (see docs/api-client.md; the loop itself is :mod:`provisioner.http`'s):

* every attempt waits for the app key's rate limiter, and is signed afresh;
* a connect error (nothing was sent) fails over to the next host and is retried, for every
  call; the first try on a host not yet tried in this call goes at once, later ones back off;
* HTTP 429 or code 1008 backs off (``Retry-After`` when given, else exponential with jitter)
  and is retried, for every call; when retries run out it raises RateLimitedError;
* a read (get, query) also retries on timeouts, dropped connections and 5xx, failing over;
* a write (create, update, delete) that may have reached the server (read timeout, dropped
  connection, 5xx) is never repeated: it raises AmbiguousWriteError and the caller reads back;
* any other non-success answer raises ApiError at once.

Success is HTTP 200 **and** body ``code == 200``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from provisioner.errors import AmbiguousWriteError, ConfigError, RateLimitedError, TransportError
from provisioner.http import (
    NOT_SENT,
    ApiClient,
    Retry,
    RetryPolicy,
    http_client,
    retry_after,
    shared_ssl_context,
)
from provisioner.rongcloud.hosts import HostRing
from provisioner.rongcloud.models import (
    BotPayload,
    DeleteBotRequest,
    GetBotsRequest,
    GetBotsResponse,
    QueryBotsRequest,
    QueryBotsResponse,
)
from provisioner.rongcloud.ratelimit import DEFAULT_RATE, RATE_LIMITERS
from provisioner.rongcloud.responses import (
    MAX_ANSWER_BYTES,
    SUCCESS,
    OversizedAnswer,
    api_error,
    odd_success,
    read_answer,
    read_body,
)
from provisioner.rongcloud.signing import (
    REQUEST_ID_HEADER,
    RongCloudAuth,
    check_credential,
    new_request_id,
)

CREATE = "/v3/bot/create.json"
UPDATE = "/v3/bot/update.json"
DELETE = "/v3/bot/delete.json"
GET = "/v3/bot/get.json"
QUERY = "/v3/bot/query.json"
INTEGRATION_DELETE = "/v3/bot/integration/delete.json"

V2_SUCCESS = 10000
"""The success ``code`` of RongCloud's newer v2 APIs (reference §3)."""

GET_BATCH = 20
"""``/v3/bot/get.json`` takes at most 20 ids a call."""
MAX_PAGES = 1000

LIMITS = httpx.Limits(max_connections=20, keepalive_expiry=30.0)
"""Connections per client; idle ones close after 30 s (RongCloud advises below 55 s)."""

logger = logging.getLogger("provisioner.rongcloud")

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass
class _Call:
    """What one logical call (all its attempts) needs to know."""

    path: str
    body: dict[str, Any] = field(repr=False)
    mutating: bool
    secrets: list[str] = field(repr=False)
    tried_hosts: set[str] = field(default_factory=set)
    attempt: int = 0
    form: bool = False
    """Send the body form-encoded (the legacy APIs) instead of as JSON."""
    any_api: bool = False
    """A call of :meth:`RongCloudClient.call`: a v2 API's success code 10000 is success too."""


class RongCloudClient(ApiClient):
    """Signed client for ``/v3/bot/*.json``; safe to share between threads; a context manager.

    ``hosts`` are base URLs in order of preference (see :func:`hosts_for_endpoint`).
    ``rate_limit`` (calls/s, ≤ 100) configures the process-wide limiter of ``app_key``.
    ``sleep`` and ``clock`` are seams for tests (backoff waits; wall clock for HTTP-date
    ``Retry-After``).

    ``redact`` lists values that must never appear in a message (every ``${NAME}`` value of
    the app): they, the app secret, the apiKeys of the call and every apiKey the server
    returned so far are taken out of every error message RongCloud sends back.
    """

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        hosts: Sequence[str],
        rate_limit: float = DEFAULT_RATE,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        redact: Sequence[str] = (),
    ) -> None:
        _check_settings(app_key, app_secret, max_attempts, timeout, backoff_base, backoff_max)
        self._app_key = app_key
        self._redact = [app_secret, *redact]
        self._stored_keys: frozenset[str] = frozenset()
        """apiKeys the server returned (get/query): a later error might quote them. Replaced
        whole (never changed in place), so calls on other threads read it safely."""
        self._ring = HostRing(hosts)
        RATE_LIMITERS.configure(app_key, rate_limit)
        self._retry = RetryPolicy(
            attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max, sleep=sleep
        )
        self._clock = clock
        super().__init__(
            http_client(
                auth=RongCloudAuth(app_key, app_secret),
                timeout=httpx.Timeout(timeout),
                limits=LIMITS,
                transport=transport,
                verify=shared_ssl_context() if transport is None else True,
            )
        )
        # What Client.post would merge in for every request, prepared once (a call is CPU-bound
        # under the GIL when many run at once; parsing the same URL each time is a waste).
        self._headers = dict(self._http.headers)
        self._extensions = {"timeout": self._http.timeout.as_dict()}
        self._urls: dict[tuple[str, str], httpx.URL] = {}

    # -- the API ---------------------------------------------------------------------------

    def create_bot(self, bot: BotPayload) -> None:
        """Create ``bot``. Raises AmbiguousWriteError when the outcome is unknown."""
        self._call(CREATE, _write_body(bot), mutating=True, secrets=_api_keys(bot))

    def update_bot(self, bot: BotPayload) -> None:
        """Replace the bot ``bot.userId`` with ``bot`` (always the full object)."""
        self._call(UPDATE, _write_body(bot), mutating=True, secrets=_api_keys(bot))

    def delete_bot(self, user_id: str) -> None:
        """Delete the bot ``user_id``."""
        self._call(DELETE, DeleteBotRequest(userId=user_id).wire(), mutating=True)

    def delete_integration(self, user_id: str, kind: str) -> None:
        """Remove the bot's integration of type ``kind`` (the Java SDK's, keyed by type)."""
        self._call(INTEGRATION_DELETE, {"userId": user_id, "type": kind}, mutating=True)

    def get_bots(self, user_ids: Sequence[str]) -> list[BotPayload]:
        """The bots among ``user_ids`` (20 ids a call); ids the server does not know are absent."""
        wanted = list(dict.fromkeys(user_ids))
        bots: list[BotPayload] = []
        for start in range(0, len(wanted), GET_BATCH):
            body = GetBotsRequest(userIds=wanted[start : start + GET_BATCH]).wire()
            bots.extend(
                self._remember_keys(self._parse(GET, self._call(GET, body), GetBotsResponse).bots)
            )
        return bots

    def query_bots(
        self, *, include_integrations: bool = True, page_size: int = 20
    ) -> list[BotPayload]:
        """Every bot of the app, following ``hasNext`` page by page."""
        if page_size < 1:
            raise ConfigError(f"page size must be at least 1, not {page_size}")
        bots: list[BotPayload] = []
        for page in range(1, MAX_PAGES + 1):
            body = QueryBotsRequest(
                page=page, pageSize=page_size, includeIntegration=include_integrations
            ).wire()
            answer = self._parse(QUERY, self._call(QUERY, body), QueryBotsResponse)
            bots.extend(self._remember_keys(answer.bots))
            if not answer.hasNext:
                return bots
            if not answer.bots:
                logger.warning("%s page %d is empty but hasNext is true; stopping", QUERY, page)
                return bots
        raise odd_success(
            QUERY,
            f"{QUERY} still reported more pages after {MAX_PAGES}",
            hint="the server keeps answering hasNext=true; report this to RongCloud",
        )

    def call(
        self, path: str, body: dict[str, Any], *, form: bool = False, read: bool = False
    ) -> dict[str, Any]:
        """One call to any server API ``path`` (``/user/info.json``): the decoded success body.

        ``form`` sends ``body`` form-encoded (a list value repeats the parameter). Under the
        retry policy above, the call counts as a write unless ``read``: only a call known to
        be a read is repeated after it may have reached the server. Success is HTTP 200 and
        ``code`` 200 (or 10000, the success code of RongCloud's newer v2 APIs).
        """
        return self._call(path, body, mutating=not read, form=form, any_api=True)

    @property
    def hosts(self) -> list[str]:
        return self._ring.hosts

    def __repr__(self) -> str:
        return f"RongCloudClient(app_key={self._app_key!r}, hosts={self._ring.hosts!r})"

    # -- retries -----------------------------------------------------------------------------

    def _call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        mutating: bool = False,
        secrets: Sequence[str] = (),
        form: bool = False,
        any_api: bool = False,
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` under the retry policy; the decoded success body."""
        call = _Call(
            path,
            body,
            mutating,
            [*self._redact, *self._stored_keys, *secrets],
            form=form,
            any_api=any_api,
        )
        return self._retry.call(lambda: self._attempt(call))

    def stored_keys(self, also: frozenset[str] = frozenset()) -> frozenset[str]:
        """The Dify keys the server's answers held, redacted from its messages, with ``also``
        (what another client of the app saw: the plan's refresh for the apply's client)."""
        self._stored_keys = self._stored_keys | also
        return self._stored_keys

    def _remember_keys(self, bots: list[BotPayload]) -> list[BotPayload]:
        keys = {key for bot in bots for key in _api_keys(bot) if "***" not in key}
        if not keys <= self._stored_keys:
            self._stored_keys = self._stored_keys | keys
        return bots

    def _url(self, host: str, path: str) -> httpx.URL:
        url = self._urls.get((host, path))
        if url is None:
            url = self._urls[(host, path)] = httpx.URL(host + path)
        return url

    def _fail_over(self, call: _Call, host: str) -> float | None:
        """Move on from ``host``; the wait before the next attempt: none (0) when the next host
        is one this call has not tried yet, else ``None`` (back off)."""
        return None if self._ring.fail_over(host) in call.tried_hosts else 0.0

    def _attempt(self, call: _Call) -> dict[str, Any]:
        host = self._ring.current()
        call.tried_hosts.add(host)
        call.attempt += 1
        RATE_LIMITERS.get(self._app_key).acquire()
        request_id = new_request_id()
        request = httpx.Request(
            "POST",
            self._url(host, call.path),
            headers={**self._headers, REQUEST_ID_HEADER: request_id},
            json=None if call.form else call.body,
            data=call.body if call.form else None,
            extensions=self._extensions,
        )
        try:
            response = self._http.send(request, stream=True)
            try:
                body = read_body(response)
            finally:
                response.close()
        except httpx.RequestError as exc:  # transport failures, undecodable bodies, redirects
            raise self._transport_failure(call, host, request_id, exc) from exc
        except OversizedAnswer as exc:
            raise self._oversized_answer(call, host, request_id, exc.status) from None
        return self._answer(call, host, request_id, response, body)

    def _transport_failure(
        self, call: _Call, host: str, request_id: str, exc: httpx.RequestError
    ) -> Exception:
        """The error (retryable or final) for an attempt that got no answer."""
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        logger.debug(
            "%s %s attempt %d: no answer (%s), request id %s",
            call.path,
            host,
            call.attempt,
            type(exc).__name__,
            request_id,
        )
        if not isinstance(exc, NOT_SENT):
            return self._unusable_answer(
                call,
                host,
                request_id,
                f"got no answer ({what})",
                hint="check the network and the timeout; RongCloud may be slow or down",
            )
        error = TransportError(
            f"could not connect to {host} for {call.path} ({what})",
            endpoint=call.path,
            hint="check the endpoint in app.yaml and the network; RongCloud may be down",
        )
        return Retry(error, wait=self._fail_over(call, host))

    def _oversized_answer(self, call: _Call, host: str, request_id: str, status: int) -> Exception:
        """The error (retryable or final) for an answer whose body passed MAX_ANSWER_BYTES."""
        logger.debug(
            "%s %s attempt %d: HTTP %d with a body over %d bytes, request id %s",
            call.path,
            host,
            call.attempt,
            status,
            MAX_ANSWER_BYTES,
            request_id,
        )
        return self._unusable_answer(
            call,
            host,
            request_id,
            f"answered HTTP {status} with a body over {MAX_ANSWER_BYTES // 2**20} MiB "
            "(not read past that)",
            hint="RongCloud's answers are a few KiB: check that `endpoint` in app.yaml points "
            "at RongCloud, not at a proxy or another service",
        )

    def _unusable_answer(
        self, call: _Call, host: str, request_id: str, outcome: str, *, hint: str
    ) -> Exception:
        """A request that was sent but got no usable answer: ambiguous for a write; for a read,
        a retryable TransportError (``hint`` for when no attempt is left). Fails over."""
        wait = self._fail_over(call, host)
        if call.mutating:
            return _ambiguous(
                call,
                host,
                f"{outcome}; it may or may not have taken effect (request id {request_id})",
            )
        error = TransportError(f"{call.path} to {host} {outcome}", endpoint=call.path, hint=hint)
        return Retry(error, wait=wait)

    def _answer(
        self, call: _Call, host: str, request_id: str, response: httpx.Response, body: bytes
    ) -> dict[str, Any]:
        """The success body of ``response``, or the (retryable or final) error it means."""
        answer = read_answer(response, request_id, call.secrets, body=body)
        logger.debug(
            "%s %s attempt %d: HTTP %d code %s request id %s",
            call.path,
            host,
            call.attempt,
            answer.status,
            answer.code,
            answer.request_id,
        )
        if answer.ok or (call.any_api and answer.status == SUCCESS and answer.code == V2_SUCCESS):
            return answer.data
        if answer.rate_limited:
            wait = retry_after(response, self._clock())
            raise Retry(api_error(call.path, answer, RateLimitedError), wait=wait)
        if answer.status >= 500:
            wait = self._fail_over(call, host)
            if call.mutating:
                raise _ambiguous(
                    call,
                    host,
                    f"answered HTTP {answer.status} (request id {answer.request_id}); it may or "
                    "may not have taken effect",
                )
            raise Retry(api_error(call.path, answer), wait=wait)
        raise api_error(call.path, answer)

    def _parse(self, path: str, data: dict[str, Any], model: type[_Model]) -> _Model:
        try:
            return model.model_validate(data)
        except ValidationError:
            # from None: pydantic's text quotes input values, which may hold an apiKey.
            raise odd_success(
                path,
                f"{path} answered success with a body of unexpected shape",
                hint="the API may have changed; report this with --debug output",
            ) from None


def _ambiguous(call: _Call, host: str, what: str) -> AmbiguousWriteError:
    """A write that may have reached ``host``: never repeated; the caller reads back."""
    return AmbiguousWriteError(
        f"{call.path} to {host} {what}",
        endpoint=call.path,
        hint="read the bot back to find out, then run apply again",
    )


def _check_settings(
    app_key: str,
    app_secret: str,
    max_attempts: int,
    timeout: float,
    backoff_base: float,
    backoff_max: float,
) -> None:
    """ConfigError for an empty or unsendable app key or secret (the value is never shown) or
    a retry setting out of range."""
    check_credential(
        "app key", app_key, hint="set appKey in app.yaml (or the variable it references)"
    )
    check_credential(
        "app secret", app_secret, hint="set the variable appSecret references in app.yaml"
    )
    if max_attempts < 1:
        raise ConfigError(f"max_attempts must be at least 1, not {max_attempts}")
    if timeout <= 0 or backoff_base < 0 or backoff_max < 0:
        raise ConfigError("timeout must be positive and backoff times not negative")


def _write_body(bot: BotPayload) -> dict[str, Any]:
    """The create/update body: the full object minus server-managed timestamps."""
    body = bot.wire()
    body.pop("createdAt", None)
    body.pop("updatedAt", None)
    return body


def _api_keys(bot: BotPayload) -> list[str]:
    return [i.auth.apiKey for i in bot.integrations or () if i.auth is not None and i.auth.apiKey]
