"""publish_private over httpx.MockTransport: a message is never sent twice blindly; only a
connect error (next host, at once) and a rate limit (Retry-After, else 1 s) are retried."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from provisioner.errors import AmbiguousWriteError, ApiError, TransportError
from provisioner.rongcloud.messages import PUBLISH, publish_private

PRIMARY = "https://primary.example.com"
BACKUP = "https://backup.example.com"
SENT = {"code": 200, "messageUIDs": [{"userId": "bot", "messageUID": "UID-1"}]}

Step = Callable[[httpx.Request], httpx.Response]


def publish(steps: list[Step], sleeps: list[float]) -> str:
    def handler(request: httpx.Request) -> httpx.Response:
        return steps.pop(0)(request)

    return publish_private(
        app_key="key",
        app_secret="secret1",
        hosts=[PRIMARY, BACKUP],
        from_user="u1",
        to_user="bot",
        object_name="RC:TxtMsg",
        content='{"content":"hi"}',
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )


def answer(status: int, body: object, **headers: str) -> Step:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def fail(kind: type[httpx.TransportError], seen: list[str] | None = None) -> Step:
    def raise_it(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(f"{request.url.scheme}://{request.url.host}")
        raise kind("injected", request=request)

    return raise_it


def test_a_published_message_is_its_uid() -> None:
    sleeps: list[float] = []
    assert publish([answer(200, SENT)], sleeps) == "UID-1"
    assert sleeps == []


def test_a_connect_error_goes_to_the_next_host_at_once() -> None:
    seen: list[str] = []

    def sent(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.scheme}://{request.url.host}")
        assert request.url.path == PUBLISH
        return httpx.Response(200, json=SENT)

    sleeps: list[float] = []
    assert publish([fail(httpx.ConnectError, seen), sent], sleeps) == "UID-1"
    assert seen == [PRIMARY, BACKUP]
    assert sleeps == [0.0]


def test_connect_errors_everywhere_end_in_a_transport_error() -> None:
    seen: list[str] = []
    sleeps: list[float] = []
    with pytest.raises(TransportError) as caught:
        publish([fail(httpx.ConnectError, seen)] * 3, sleeps)
    assert type(caught.value) is TransportError
    assert caught.value.message == (f"could not connect to {PRIMARY} for {PUBLISH} (ConnectError)")
    assert seen == [PRIMARY, BACKUP, PRIMARY]
    assert sleeps == [0.0, 0.0]


def test_a_rate_limit_waits_retry_after_else_a_second() -> None:
    limited = {"code": 1008, "errorMessage": "too many"}
    sleeps: list[float] = []
    steps = [answer(429, limited, **{"Retry-After": "2"}), answer(200, limited), answer(200, SENT)]
    assert publish(steps, sleeps) == "UID-1"
    assert sleeps == [2.0, 1.0]


def test_a_rate_limit_to_the_end_is_an_api_error() -> None:
    sleeps: list[float] = []
    with pytest.raises(ApiError) as caught:
        publish([answer(429, {"code": 1008})] * 3, sleeps)
    assert type(caught.value) is ApiError
    assert (caught.value.http_status, caught.value.code) == (429, 1008)
    assert sleeps == [1.0, 1.0]


@pytest.mark.parametrize("kind", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_a_message_without_an_answer_is_ambiguous_and_not_sent_again(
    kind: type[httpx.TransportError],
) -> None:
    sleeps: list[float] = []
    with pytest.raises(AmbiguousWriteError) as caught:
        publish([fail(kind), answer(200, SENT)], sleeps)
    assert caught.value.message.startswith(
        f"{PUBLISH} to {PRIMARY} got no usable answer ({kind.__name__}); the message may or "
        "may not have been sent (request id "
    )
    assert caught.value.hint == "check the conversation in a client before sending it again"
    assert sleeps == []


def test_a_5xx_is_not_repeated() -> None:
    sleeps: list[float] = []
    with pytest.raises(ApiError) as caught:
        publish([answer(503, {"code": 1000}), answer(200, SENT)], sleeps)
    assert caught.value.http_status == 503
    assert sleeps == []
