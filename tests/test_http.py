"""The HTTP skeleton over httpx.MockTransport: Retry-After (seconds, date, absent, capped),
attempts running out, errors that are not retried, and the lifecycle of the owned client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from provisioner.errors import ConfigError, ProvisionerError, TransportError
from provisioner.http import (
    MAX_RETRY_AFTER,
    USER_AGENT,
    ApiClient,
    Retry,
    RetryPolicy,
    http_client,
    retry_after,
)

NOON = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
URL = "https://api.example.com/thing"

Handler = Callable[[httpx.Request], httpx.Response]


class Thing(ApiClient):
    """The smallest client on the skeleton: ``GET /thing``; 429 and 503 are retried, a connect
    error is retried at once, anything else but 200 is refused."""

    def __init__(self, handler: Handler, sleeps: list[float], attempts: int = 3) -> None:
        super().__init__(
            http_client(timeout=httpx.Timeout(5.0), transport=httpx.MockTransport(handler))
        )
        self._retry = RetryPolicy(
            attempts=attempts, backoff_base=0.5, backoff_max=4.0, sleep=sleeps.append
        )

    def get(self) -> str:
        return self._retry.call(self._attempt)

    def _attempt(self) -> str:
        try:
            response = self._http.get(URL)
        except httpx.ConnectError as exc:
            raise Retry(TransportError("could not connect", endpoint="GET /thing"), wait=0) from exc
        if response.status_code in (429, 503):
            error = TransportError(f"busy: HTTP {response.status_code}", endpoint="GET /thing")
            raise Retry(error, wait=retry_after(response, NOON.timestamp()))
        if response.status_code != 200:
            raise ConfigError(f"refused: HTTP {response.status_code}")
        return response.text


def answers(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``responses`` in turn, and the requests it saw."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return handler, seen


def busy(status: int = 429, retry_after: str | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers={} if retry_after is None else {"Retry-After": retry_after}
    )


OK = httpx.Response(200, text="done")


# -- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("nan", None),
        ("9999", 60.0),
        ("Thu, 01 Jan 2026 12:00:05 GMT", 5.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_forms(value: str | None, expected: float | None) -> None:
    headers = {} if value is None else {"Retry-After": value}
    assert retry_after(httpx.Response(429, headers=headers), NOON.timestamp()) == expected


def test_retry_after_in_seconds_is_waited() -> None:
    handler, seen = answers(busy(retry_after="2"), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing:
        assert thing.get() == "done"
    assert (len(seen), sleeps) == (2, [2.0])


def test_retry_after_as_an_http_date_is_waited() -> None:
    later = format_datetime(NOON + timedelta(seconds=3), usegmt=True)
    handler, _ = answers(busy(503, retry_after=later), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing:
        assert thing.get() == "done"
    assert sleeps == [3.0]


def test_a_huge_retry_after_is_capped() -> None:
    handler, _ = answers(busy(retry_after="86400"), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing:
        thing.get()
    assert sleeps == [MAX_RETRY_AFTER] == [60.0]


def test_without_retry_after_it_backs_off_exponentially_with_jitter() -> None:
    handler, seen = answers(busy(503), busy(), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing:
        assert thing.get() == "done"
    assert len(seen) == 3
    first, second = sleeps
    assert 0.5 <= first <= 1.0  # 0.5 × 2⁰ + random(0, 0.5)
    assert 1.0 <= second <= 1.5  # 0.5 × 2¹ + random(0, 0.5)


def test_a_wait_of_zero_goes_at_once() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    queue: list[Handler] = [refuse, lambda request: OK]
    sleeps: list[float] = []
    with Thing(lambda request: queue.pop(0)(request), sleeps) as thing:
        assert thing.get() == "done"
    assert sleeps == [0.0]


# -- the end of a call ----------------------------------------------------------------------------


def test_when_attempts_run_out_the_last_error_is_raised() -> None:
    handler, seen = answers(busy(503), busy(503), busy(429))
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing, pytest.raises(TransportError) as caught:
        thing.get()
    assert caught.value.message == "busy: HTTP 429"
    assert (len(seen), len(sleeps)) == (3, 2)
    assert caught.value.__cause__ is None


def test_the_last_error_is_chained_to_what_caused_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with Thing(refuse, [], attempts=2) as thing, pytest.raises(TransportError) as caught:
        thing.get()
    assert caught.value.message == "could not connect"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_one_attempt_is_never_retried() -> None:
    handler, seen = answers(busy(retry_after="1"), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps, attempts=1) as thing, pytest.raises(TransportError):
        thing.get()
    assert (len(seen), sleeps) == (1, [])


def test_an_error_that_is_not_retryable_passes_through_at_once() -> None:
    handler, seen = answers(busy(404), OK)
    sleeps: list[float] = []
    with Thing(handler, sleeps) as thing, pytest.raises(ConfigError) as caught:
        thing.get()
    assert caught.value.message == "refused: HTTP 404"
    assert (len(seen), sleeps) == (1, [])


def test_any_other_exception_passes_through_unchanged() -> None:
    bug = KeyError("bug")

    def attempt() -> str:
        raise bug

    def sleep(seconds: float) -> None:
        pytest.fail(f"slept {seconds} s")

    policy = RetryPolicy(attempts=3, backoff_base=0.5, backoff_max=4.0, sleep=sleep)
    with pytest.raises(KeyError) as caught:
        policy.call(attempt)
    assert caught.value is bug


def test_retry_carries_its_error_and_message() -> None:
    error = ProvisionerError("the message", hint="a hint")
    retry = Retry(error, wait=1.5)
    assert (retry.error, retry.wait, str(retry)) == (error, 1.5, "the message")
    assert Retry(error).wait is None


# -- the owned client ---------------------------------------------------------------------------


def test_leaving_the_with_block_closes_the_client() -> None:
    handler, _ = answers(OK)
    with Thing(handler, []) as thing:
        thing.get()
        assert not thing._http.is_closed
    assert thing._http.is_closed


def test_close_closes_the_client() -> None:
    thing = Thing(answers()[0], [])
    thing.close()
    assert thing._http.is_closed
    with pytest.raises(RuntimeError):
        thing.get()


def test_an_error_inside_the_with_block_still_closes_the_client() -> None:
    thing = Thing(answers()[0], [])
    with pytest.raises(ValueError), thing:
        raise ValueError("inside")
    assert thing._http.is_closed


def test_the_client_sends_the_user_agent_and_follows_no_redirect() -> None:
    handler, seen = answers(httpx.Response(302, headers={"Location": "https://elsewhere.example"}))
    headers = {"Accept": "application/json", "User-Agent": "someone-else"}
    with http_client(
        timeout=httpx.Timeout(5.0), transport=httpx.MockTransport(handler), headers=headers
    ) as client:
        assert client.get(URL).status_code == 302
    assert len(seen) == 1
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("provisioner/")
    assert seen[0].headers["Accept"] == "application/json"
