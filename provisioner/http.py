"""The HTTP skeleton under the API clients (RongCloud, GitHub, Dify): a retrying call that
honours ``Retry-After``, and the lifecycle of the one ``httpx.Client`` a client owns.

A client keeps only its own rules and its error mapping. Each attempt of a call either
returns, raises :class:`Retry` (a failure that may be tried again: its ``error`` is what the
caller gets when no attempt is left) or raises anything else, which ends the call at once.
Between attempts the wait is the one the attempt asked for (``Retry-After``; 0 for at once),
else exponential backoff with jitter (tenacity's ``wait_exponential_jitter``).

The API trace: every client here sends through :func:`http_client`'s client, which logs one
DEBUG record per HTTP exchange on :data:`API_LOGGER` (``PROVISIONER_LOG=debug`` or
``--log-file`` shows them): method, host and path (never the query), status (or the
exception's name when no answer came), request id (the answer's ``X-Request-ID`` or
``X-GitHub-Request-Id``, else the one sent), duration to the answer's headers, and the
attempt number of :meth:`RetryPolicy.call`. Never a header, a query or a body.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from httpx._utils import get_environment_proxies
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from provisioner import __version__
from provisioner.errors import ProvisionerError

USER_AGENT = f"provisioner/{__version__}"
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that prove the request never left: safe to repeat, even for a write."""
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this."""
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's own default connection pool."""

API_LOGGER = "provisioner.http"
"""The logger of the API trace (module docstring)."""
_REQUEST_ID_HEADERS = ("X-Request-ID", "X-GitHub-Request-Id")
_trace = logging.getLogger(API_LOGGER)
_attempt: ContextVar[int] = ContextVar("provisioner_http_attempt", default=1)
"""The attempt of the call this thread is making (set by :meth:`RetryPolicy.call`)."""

_Result = TypeVar("_Result")


class Retry(Exception):
    """One attempt failed in a way that may be retried; ``error`` is raised if none is left.
    ``wait`` is how long to wait first (``Retry-After``, 0 for at once); ``None``: back off."""

    def __init__(self, error: ProvisionerError, *, wait: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.wait = wait


class RetryPolicy:
    """At most ``attempts`` tries of a call; between them the wait the failed attempt asked
    for, else ``backoff_base × 2ⁿ + random(0, backoff_base)`` capped at ``backoff_max``.
    ``sleep`` is a seam for tests."""

    def __init__(
        self,
        *,
        attempts: int,
        backoff_base: float,
        backoff_max: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts = attempts
        self.sleep = sleep
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_base, max=backoff_max, jitter=backoff_base
        )

    def call(self, attempt: Callable[[], _Result]) -> _Result:
        """What ``attempt()`` returns, trying again after each :class:`Retry` while attempts
        are left; then that Retry's ``error`` (chained to what caused it). Anything else
        ``attempt`` raises passes through at once."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(Retry),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            # Not retrying(attempt): that asks the retry rule about every success too, while a
            # return from inside the loop ends it at once (a call is CPU-bound under the GIL
            # when many run at once).
            for each in retrying:
                with each:
                    token = _attempt.set(each.retry_state.attempt_number)
                    try:
                        return attempt()
                    finally:
                        _attempt.reset(token)
        except Retry as failure:
            raise failure.error from failure.__cause__
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, Retry) and failure.wait is not None:
            return failure.wait
        return float(self._backoff(state))


def retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait from the ``Retry-After`` of ``response`` (delta-seconds or HTTP date),
    capped at :data:`MAX_RETRY_AFTER`; ``None`` when absent or unreadable. ``now`` is epoch
    seconds."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def http_client(
    *,
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    limits: httpx.Limits = DEFAULT_LIMITS,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An ``httpx.Client`` as every client here wants it: redirects never followed,
    provisioner's User-Agent after ``headers``, an explicit timeout, the API trace.

    The proxies of the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) apply as httpx applies
    them, but they are read once per process and setting (:func:`environment_proxies`), not
    by every client: httpx scans the whole environment for ``*_proxy`` variables, and a
    fleet's environment holds two variables per app, so a run over N apps spent N × N."""
    if verify is True:
        verify = shared_ssl_context()
    mounts: dict[str, httpx.BaseTransport | None] | None = None
    if transport is None:
        mounts = {
            pattern: None
            if proxy is None
            else httpx.HTTPTransport(verify=verify, limits=limits, proxy=proxy)
            for pattern, proxy in environment_proxies().items()
        }
    return _TracedClient(
        auth=auth,
        timeout=timeout,
        limits=limits,
        headers={**(headers or {}), "User-Agent": USER_AGENT},
        follow_redirects=False,
        transport=transport,
        verify=verify,
        trust_env=False,
        mounts=mounts,
    )


_PROXY_VARIABLES = tuple(
    name
    for base in ("http", "https", "all", "no")
    for name in (f"{base}_proxy", f"{base.upper()}_PROXY")
)
_PROXIES: dict[tuple[str | None, ...], dict[str, str | None]] = {}


def environment_proxies() -> dict[str, str | None]:
    """httpx's proxy map of the environment (URL pattern → proxy URL, None: no proxy), made
    once per value of the proxy variables httpx reads."""
    key = tuple(os.environ.get(name) for name in _PROXY_VARIABLES)
    with _SSL_LOCK:
        found = _PROXIES.get(key)
        if found is None:
            found = _PROXIES[key] = get_environment_proxies()
        return found


class _TracedClient(httpx.Client):
    """``httpx.Client`` that logs each exchange on :data:`API_LOGGER` (module docstring)."""

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if not _trace.isEnabledFor(logging.DEBUG):
            return super().send(request, **kwargs)
        start = time.monotonic()
        try:
            response = super().send(request, **kwargs)
        except httpx.HTTPError as exc:
            _log_exchange(request, type(exc).__name__, None, start)
            raise
        _log_exchange(request, str(response.status_code), response, start)
        return response


def _log_exchange(
    request: httpx.Request, outcome: str, response: httpx.Response | None, start: float
) -> None:
    request_id = next(
        (
            headers[name]
            for headers in (response.headers if response is not None else {}, request.headers)
            for name in _REQUEST_ID_HEADERS
            if name in headers
        ),
        "-",
    )
    _trace.debug(
        "%s %s%s %s request_id=%s duration_ms=%d attempt=%d",
        request.method,
        request.url.netloc.decode("ascii", "replace"),
        request.url.path,
        outcome,
        request_id,
        round((time.monotonic() - start) * 1000),
        _attempt.get(),
    )


class ApiClient:
    """A client that owns one ``httpx.Client`` (``_http``, made by :func:`http_client`):
    ``close()`` closes it, and so does leaving a ``with`` block."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

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


_SSL_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The certificate-verifying SSL context httpx would make for a client (``verify=True``:
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, else certifi's bundle), made once per
    process and shared: loading the CA bundle costs ~20 ms of CPU, once per client otherwise
    (100 apps, 100 clients)."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(key)
        if context is None:
            context = _SSL_CONTEXTS[key] = httpx.create_ssl_context()
        return context
