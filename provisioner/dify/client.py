"""A small client for one Dify app's Service API: ``GET /info``, ``GET /parameters`` and the
two generation endpoints, blocking or streaming.

* Every request has explicit timeouts: ``timeout`` seconds to connect and for each read, and
  a deadline for the whole answer (``timeout`` for a probe, ``ANSWER_DEADLINE_FACTOR`` times
  that for a generated answer, whose stream may run long). Dify's stream pings every 10 s, so
  keep ``timeout`` above 10 for streaming.
* Only Dify's ``too_many_requests`` (HTTP 429, a per-app concurrency limit) is retried, with
  exponential backoff and jitter (``Retry-After`` when given); ``rate_limit_error`` (a plan
  quota) and every other failure raise :class:`~provisioner.errors.DifyError` at once.
* Answers are read at most :data:`MAX_ANSWER_BYTES` (:data:`MAX_STREAM_BYTES` for a stream).
* The app key goes only in the ``Authorization`` header; it is redacted from every message
  Dify sends back, and no error names it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from provisioner.dify.protocol import (
    Reply,
    StreamReader,
    blocking_reply,
    error_envelope,
)
from provisioner.errors import ConfigError, DifyError, DifyUnreachableError
from provisioner.http import ApiClient, Retry, RetryPolicy, http_client, retry_after
from provisioner.rongcloud.signing import credential_problem
from provisioner.secrets import redact

DEFAULT_TIMEOUT = 15.0
ANSWER_DEADLINE_FACTOR = 8
MAX_ANSWER_BYTES = 1024 * 1024
MAX_STREAM_BYTES = 8 * 1024 * 1024
BUSY_CODE = "too_many_requests"
QUOTA_CODE = "rate_limit_error"
PAGE = 100
"""Messages per page read from ``GET /messages`` (Dify's largest)."""
APP_GONE = "The app no longer exists."
"""Current Dify's 403 message for a key whose app was deleted."""

HINTS = {
    401: "check the app's API key (Dify: the app's API Access page) and the variable "
    "auth.apiKey references",
    403: 'current Dify answers 403 when the app is gone ("The app no longer exists."), '
    "disabled, its API service is off or its workspace is archived: enable it in Dify (API "
    "Access), or set the key of an app that exists",
    404: "Dify before mid-2024 answers 404 when the app is gone or its API is off; current "
    "Dify only for an unknown conversation or route: check callbackUrl too",
    QUOTA_CODE: "the Dify plan's quota is used up: wait for it to renew or upgrade the plan",
    BUSY_CODE: "too many requests at once for this app: try again later, or raise the app's "
    "concurrency limit in Dify",
}
NOT_DIFY_HINT = (
    "check that callbackUrl is the Dify API base ending in /v1 (e.g. https://api.dify.ai/v1), "
    "not a proxy, a login page or another service"
)


class DifyClient(ApiClient):
    """One Dify app: ``base_url`` is the API base (``https://api.dify.ai/v1``), ``api_key``
    the app's key. A context manager; not shared between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        problem = credential_problem(api_key) if api_key else "nothing (it is empty)"
        if problem is not None:
            raise ConfigError(
                f"the Dify app key contains {problem}",
                hint="set the variable auth.apiKey references to the key from Dify's API "
                "Access page (printable ASCII only)",
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._secrets = [api_key]
        self._retry = RetryPolicy(
            attempts=max(1, max_attempts),
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
        )
        self._clock = clock
        super().__init__(
            http_client(
                timeout=httpx.Timeout(timeout),
                headers={"Authorization": f"Bearer {api_key}"},
                transport=transport,
            )
        )

    def info(self) -> dict[str, Any]:
        """``GET /info``: the app's name, description and (on current Dify) mode."""
        return self._json_object("GET", "/info")

    def parameters(self) -> dict[str, Any]:
        """``GET /parameters``: the app's input form and features."""
        return self._json_object("GET", "/parameters")

    def message_count(self, user: str, conversation_id: str) -> int:
        """How many messages Dify recorded in ``user``'s conversation ``conversation_id``
        (``GET /messages``, paged back with ``first_id``)."""
        count, first_id = 0, ""
        while True:
            query = {"user": user, "conversation_id": conversation_id, "limit": str(PAGE)}
            if first_id:
                query["first_id"] = first_id
            page = self._json_object("GET", "/messages", query)
            data = page.get("data")
            if not isinstance(data, list):
                raise DifyError(
                    "the answer to GET /messages has no data list",
                    endpoint="GET /messages",
                    status=200,
                    hint=NOT_DIFY_HINT,
                )
            count += len(data)
            first = data[0].get("id") if data and isinstance(data[0], dict) else None
            if page.get("has_more") is not True or not isinstance(first, str):
                return count
            first_id = first

    def send(self, path: str, body: dict[str, Any]) -> Reply:
        """POST a generation request (``/chat-messages`` or ``/completion-messages``); the
        answer, read as a stream when ``body["response_mode"]`` is ``streaming``."""
        return self._retry.call(lambda: self._generate(path, body))

    def __repr__(self) -> str:
        return f"DifyClient(base_url={self.base_url!r})"

    # -- requests ------------------------------------------------------------------------------

    def _json_object(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            endpoint = f"{method} {path}"
            with self._request(method, path, None, endpoint, params) as response:
                body = self._body(response, endpoint, self._clock() + self.timeout)
            return self._decoded_object(endpoint, response, body)

        return self._retry.call(attempt)

    def _generate(self, path: str, body: dict[str, Any]) -> Reply:
        endpoint = f"POST {path}"
        started = self._clock()
        deadline = started + self.timeout * ANSWER_DEADLINE_FACTOR
        with self._request("POST", path, body, endpoint) as response:
            if response.status_code != 200 or body.get("response_mode") != "streaming":
                answer = self._body(response, endpoint, deadline)
                return blocking_reply(self._decoded_object(endpoint, response, answer), endpoint)
            return self._streamed(response, endpoint, started, deadline)

    def _streamed(
        self, response: httpx.Response, endpoint: str, started: float, deadline: float
    ) -> Reply:
        reader = StreamReader(endpoint, secrets=self._secrets, clock=self._clock, started=started)
        for line in self._lines(response, endpoint, deadline):
            reader.feed(line)
        return reader.reply()

    @contextmanager
    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        endpoint: str,
        params: dict[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        url = self.base_url + path
        request = self._http.build_request(method, url, json=body, params=params)
        try:
            response = self._http.send(request, stream=True)
        except httpx.RequestError as exc:
            raise self._no_answer(endpoint, exc) from exc
        try:
            yield response
        finally:
            response.close()

    # -- reading answers -------------------------------------------------------------------

    def _body(self, response: httpx.Response, endpoint: str, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in self._chunks(response, endpoint, deadline):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise self._too_long(endpoint, response.status_code, MAX_ANSWER_BYTES)
            chunks.append(chunk)
        return b"".join(chunks)

    def _lines(self, response: httpx.Response, endpoint: str, deadline: float) -> Iterator[str]:
        pending = b""
        size = 0
        for chunk in self._chunks(response, endpoint, deadline):
            size += len(chunk)
            if size > MAX_STREAM_BYTES:
                raise self._too_long(endpoint, response.status_code, MAX_STREAM_BYTES)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                yield line.removesuffix(b"\r").decode("utf-8", "replace")
        if pending:
            yield pending.removesuffix(b"\r").decode("utf-8", "replace")

    def _chunks(self, response: httpx.Response, endpoint: str, deadline: float) -> Iterator[bytes]:
        try:
            for chunk in response.iter_bytes():
                yield chunk
                if self._clock() > deadline:
                    raise DifyUnreachableError(
                        f"Dify's answer to {endpoint} did not end in time",
                        endpoint=endpoint,
                        status=response.status_code,
                        hint="Dify (or a proxy in front of it) is slow or stuck; try again, "
                        "or raise --timeout",
                    )
        except httpx.RequestError as exc:
            raise self._no_answer(endpoint, exc) from exc

    def _decoded_object(
        self, endpoint: str, response: httpx.Response, body: bytes
    ) -> dict[str, Any]:
        status = response.status_code
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if status == 200 and isinstance(data, dict):
            return data
        if status == 200:
            raise DifyError(
                f"the answer to {endpoint} is not Dify's (not a JSON object)",
                endpoint=endpoint,
                status=status,
                hint=NOT_DIFY_HINT,
            )
        failure = self._failure(endpoint, status, data)
        if status == 429 and failure.code == BUSY_CODE:
            raise Retry(failure, wait=retry_after(response, time.time()))
        raise failure

    def _failure(self, endpoint: str, status: int, data: object) -> DifyError:
        code, message = error_envelope(data)
        message = redact(message, self._secrets) if message else None
        what = f"HTTP {status}" + (f" {code}" if code else "")
        detail = f": {message}" if message else ""
        return DifyError(
            f"Dify answered {endpoint} with {what}{detail}",
            endpoint=endpoint,
            status=status,
            code=code,
            dify_message=message,
            hint=_hint(status, code, message),
        )

    def _no_answer(self, endpoint: str, exc: httpx.RequestError) -> DifyUnreachableError:
        host = httpx.URL(self.base_url).host
        if isinstance(exc, httpx.TimeoutException):
            what = f"no answer from {host} within {self.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError):
            what = f"cannot connect to {host}"
        else:
            what = f"the connection to {host} broke ({type(exc).__name__})"
        return DifyUnreachableError(
            f"{endpoint}: {what}",
            endpoint=endpoint,
            hint="check callbackUrl and the network",
        )

    def _too_long(self, endpoint: str, status: int, limit: int) -> DifyError:
        return DifyError(
            f"the answer to {endpoint} (HTTP {status}) is longer than {limit // 2**20} MiB "
            "(not read past that)",
            endpoint=endpoint,
            status=status,
            hint=NOT_DIFY_HINT,
        )


def _hint(status: int, code: str | None, message: str | None) -> str:
    if status == 403 and message == APP_GONE:
        return (
            "the app this key belongs to was deleted in Dify: set the key of an app that exists"
            " (the app's API Access page)"
        )
    return HINTS.get(code or "") or HINTS.get(status) or _status_hint(status, code)


def _status_hint(status: int, code: str | None) -> str:
    if status == 429:
        return "Dify limits this app's requests: try again later"
    if 300 <= status < 400:
        return "callbackUrl redirects: use the final Dify API base URL instead"
    if status >= 500:
        return "Dify failed internally: see its status page or logs, then try again"
    if code is None:
        return NOT_DIFY_HINT
    return "see Dify's message above"
