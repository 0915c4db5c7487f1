"""The signed RongCloud bot API client: one ``httpx.Client``, rate limited, retrying, failing over.

Retry policy (see docs/api-client.md):

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
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from provisioner import __version__
from provisioner.errors import (
    AmbiguousWriteError,
    ApiError,
    ConfigError,
    ProvisionerError,
    RateLimitedError,
    TransportError,
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
from provisioner.rongcloud.signing import REQUEST_ID_HEADER, RongCloudAuth, new_request_id

CREATE = "/v3/bot/create.json"
UPDATE = "/v3/bot/update.json"
DELETE = "/v3/bot/delete.json"
GET = "/v3/bot/get.json"
QUERY = "/v3/bot/query.json"

GET_BATCH = 20
"""``/v3/bot/get.json`` takes at most 20 ids a call."""
MAX_PAGES = 1000
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this."""
SUCCESS = 200
RATE_LIMITED_CODE = 1008
REDACTED = "(sensitive)"
MIN_REDACTED_LENGTH = 6
"""Shorter "secrets" (test values like ``s``) are not searched for: they would shred the text."""

logger = logging.getLogger("provisioner.rongcloud")

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that prove the request never left: safe to repeat, even for a write."""

_HINTS = {
    1001: "check RONGCLOUD_APP_KEY and RONGCLOUD_APP_SECRET: the secret does not match the key",
    1004: "check the app key and secret, and that this machine's clock is in sync (NTP)",
    1008: "lower the rate limit (rateLimit in app.yaml) or try again later",
    1009: "enable the bot service for this app in the RongCloud console",
}
_STATUS_HINTS = {
    401: _HINTS[1004],
    403: "the app key may not be allowed to call this API; check the RongCloud console",
    429: _HINTS[1008],
}

_Model = TypeVar("_Model", bound=BaseModel)


class _RetryableFailure(Exception):
    """One attempt failed in a way that may be retried; ``error`` is raised if none is left."""

    def __init__(
        self, error: ProvisionerError, *, retry_after: float | None = None, immediate: bool = False
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.immediate = immediate


@dataclass
class _Call:
    """What one logical call (all its attempts) needs to know."""

    path: str
    body: dict[str, Any]
    mutating: bool
    secrets: list[str]
    tried_hosts: set[str] = field(default_factory=set)
    attempt: int = 0


class RongCloudClient:
    """Signed client for ``/v3/bot/*.json``; safe to share between threads; a context manager.

    ``hosts`` are base URLs in order of preference (see :func:`hosts_for_endpoint`).
    ``rate_limit`` (calls/s, ≤ 100) configures the process-wide limiter of ``app_key``.
    ``sleep`` and ``clock`` are seams for tests (backoff waits; wall clock for HTTP-date
    ``Retry-After``).
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
    ) -> None:
        if not app_key:
            raise ConfigError("the app key is empty", hint="set appKey in app.yaml")
        if not app_secret:
            raise ConfigError("the app secret is empty", hint="set appSecret in app.yaml")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {max_attempts}")
        if timeout <= 0 or backoff_base < 0 or backoff_max < 0:
            raise ConfigError("timeout must be positive and backoff times not negative")
        self._app_key = app_key
        self._app_secret = app_secret
        self._ring = HostRing(hosts)
        RATE_LIMITERS.configure(app_key, rate_limit)
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_base, max=backoff_max, jitter=backoff_base
        )
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            auth=RongCloudAuth(app_key, app_secret),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=20, keepalive_expiry=30.0),
            headers={"User-Agent": f"provisioner/{__version__}"},
            follow_redirects=False,
            transport=transport,
        )

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

    def get_bots(self, user_ids: Sequence[str]) -> list[BotPayload]:
        """The bots among ``user_ids`` (20 ids a call); ids the server does not know are absent."""
        wanted = list(dict.fromkeys(user_ids))
        bots: list[BotPayload] = []
        for start in range(0, len(wanted), GET_BATCH):
            body = GetBotsRequest(userIds=wanted[start : start + GET_BATCH]).wire()
            bots.extend(self._parse(GET, self._call(GET, body), GetBotsResponse).bots)
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
            bots.extend(answer.bots)
            if not answer.hasNext:
                return bots
            if not answer.bots:
                logger.warning("%s page %d is empty but hasNext is true; stopping", QUERY, page)
                return bots
        raise ApiError(
            f"{QUERY} still reported more pages after {MAX_PAGES}",
            endpoint=QUERY,
            http_status=SUCCESS,
            code=SUCCESS,
            error_message=None,
            request_id=None,
            hint="the server keeps answering hasNext=true; report this to RongCloud",
        )

    @property
    def hosts(self) -> list[str]:
        return self._ring.hosts

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` under the retry policy; the decoded success body."""
        call = _Call(path, body, mutating, [self._app_secret, *secrets])
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_RetryableFailure),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(call)
        except _RetryableFailure as failure:
            raise failure.error from failure.__cause__
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableFailure):
            if failure.retry_after is not None:
                return failure.retry_after
            if failure.immediate:
                return 0.0
        return float(self._backoff(state))

    def _attempt(self, call: _Call) -> dict[str, Any]:
        host = self._ring.current()
        call.tried_hosts.add(host)
        call.attempt += 1
        RATE_LIMITERS.get(self._app_key).acquire()
        request_id = new_request_id()
        try:
            response = self._http.post(
                host + call.path, json=call.body, headers={REQUEST_ID_HEADER: request_id}
            )
        except httpx.RequestError as exc:  # transport failures, undecodable bodies, redirects
            raise self._transport_failure(call, host, request_id, exc) from exc
        return self._answer(call, host, request_id, response)

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
        next_host = self._ring.fail_over(host)
        fresh = next_host not in call.tried_hosts
        if isinstance(exc, _NOT_SENT):
            error = TransportError(
                f"could not connect to {host} for {call.path} ({what})",
                endpoint=call.path,
                hint="check the endpoint in app.yaml and the network; RongCloud may be down",
            )
            return _RetryableFailure(error, immediate=fresh)
        if call.mutating:
            return AmbiguousWriteError(
                f"{call.path} to {host} got no answer ({what}); it may or may not have taken "
                f"effect (request id {request_id})",
                endpoint=call.path,
                hint="read the bot back to find out, then run apply again",
            )
        error = TransportError(
            f"{call.path} to {host} got no answer ({what})",
            endpoint=call.path,
            hint="check the network and the timeout; RongCloud may be slow or down",
        )
        return _RetryableFailure(error, immediate=fresh)

    def _answer(
        self, call: _Call, host: str, request_id: str, response: httpx.Response
    ) -> dict[str, Any]:
        """The success body of ``response``, or the (retryable or final) error it means."""
        status = response.status_code
        answered_id = response.headers.get(REQUEST_ID_HEADER) or request_id
        data = _json_object(response)
        code = data.get("code") if isinstance(data.get("code"), int) else None
        logger.debug(
            "%s %s attempt %d: HTTP %d code %s request id %s",
            call.path,
            host,
            call.attempt,
            status,
            code,
            answered_id,
        )
        if status == SUCCESS and code == SUCCESS:
            return data
        raw_message = data.get("errorMessage")
        error_message = _redact(raw_message, call.secrets) if isinstance(raw_message, str) else None
        if status == 429 or code == RATE_LIMITED_CODE:
            error: ApiError = RateLimitedError(
                _describe(call.path, status, code, error_message, answered_id),
                endpoint=call.path,
                http_status=status,
                code=code,
                error_message=error_message,
                request_id=answered_id,
                hint=_HINTS[RATE_LIMITED_CODE],
            )
            raise _RetryableFailure(error, retry_after=self._retry_after(response))
        if status >= 500:
            fresh = self._ring.fail_over(host) not in call.tried_hosts
            if call.mutating:
                raise AmbiguousWriteError(
                    f"{call.path} to {host} answered HTTP {status} (request id {answered_id}); "
                    "it may or may not have taken effect",
                    endpoint=call.path,
                    hint="read the bot back to find out, then run apply again",
                )
            error = _api_error(call.path, status, code, error_message, answered_id)
            raise _RetryableFailure(error, immediate=fresh)
        raise _api_error(call.path, status, code, error_message, answered_id)

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds from ``Retry-After`` (delta-seconds or HTTP date), capped; None if absent."""
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - self._clock()
            except (TypeError, ValueError, IndexError):
                return None
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)

    def _parse(self, path: str, data: dict[str, Any], model: type[_Model]) -> _Model:
        try:
            return model.model_validate(data)
        except ValidationError:
            # from None: pydantic's text quotes input values, which may hold an apiKey.
            raise ApiError(
                f"{path} answered success with a body of unexpected shape",
                endpoint=path,
                http_status=SUCCESS,
                code=SUCCESS,
                error_message=None,
                request_id=None,
                hint="the API may have changed; report this with --debug output",
            ) from None


def _write_body(bot: BotPayload) -> dict[str, Any]:
    """The create/update body: the full object minus server-managed timestamps."""
    body = bot.wire()
    body.pop("createdAt", None)
    body.pop("updatedAt", None)
    return body


def _api_keys(bot: BotPayload) -> list[str]:
    return [i.auth.apiKey for i in bot.integrations or () if i.auth is not None and i.auth.apiKey]


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_LENGTH:
            text = text.replace(secret, REDACTED)
    return text


def _describe(
    path: str, status: int, code: int | None, error_message: str | None, request_id: str
) -> str:
    parts = [f"HTTP {status}"]
    if code is not None:
        parts.append(f"code {code}")
    detail = f": {error_message}" if error_message else ""
    return f"RongCloud rejected {path} ({', '.join(parts)}){detail} (request id {request_id})"


def _api_error(
    path: str, status: int, code: int | None, error_message: str | None, request_id: str
) -> ApiError:
    hint = _HINTS.get(code or 0) or _STATUS_HINTS.get(status)
    return ApiError(
        _describe(path, status, code, error_message, request_id),
        endpoint=path,
        http_status=status,
        code=code,
        error_message=error_message,
        request_id=request_id,
        hint=hint,
    )
