"""The Dify client over httpx.MockTransport: keys, retries, redaction, bounded reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provisioner.dify.client import DifyClient
from provisioner.errors import ConfigError, DifyError

KEY = "app-client-key-42"


def client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> DifyClient:
    waits: list[float] = kwargs.pop("waits", [])
    return DifyClient(
        "https://dify.example.com/v1/",
        KEY,
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        backoff_base=0.01,
        **kwargs,
    )


def dify_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"code": code, "message": message, "status": status}
    return httpx.Response(status, json=body, headers=headers)


def test_the_key_goes_only_in_the_bearer_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "x", "mode": "chat"})

    with client(handler) as dify:
        assert dify.info() == {"name": "x", "mode": "chat"}
        assert KEY not in repr(dify)
    assert str(seen[0].url) == "https://dify.example.com/v1/info"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "nothing (it is empty)"),
        ("app-x\n", "a line break (CR or LF)"),
        ("ключ", "a non-ASCII character"),
    ],
)
def test_an_unsendable_key_is_a_config_error_without_the_value(key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DifyClient("https://d.example.com/v1", key)
    assert caught.value.message == f"the Dify app key contains {problem}"


def test_too_many_requests_is_retried_with_retry_after() -> None:
    answers = [
        dify_error(429, "too_many_requests", "busy", **{"Retry-After": "2"}),
        dify_error(429, "too_many_requests", "busy"),
        httpx.Response(200, json={"user_input_form": []}),
    ]
    waits: list[float] = []
    with client(lambda request: answers.pop(0), waits=waits) as dify:
        assert dify.parameters() == {"user_input_form": []}
    assert waits[0] == 2.0 and len(waits) == 2


def test_a_quota_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return dify_error(429, "rate_limit_error", "quota")

    with client(handler) as dify, pytest.raises(DifyError) as caught:
        dify.info()
    assert (len(calls), caught.value.code, caught.value.status) == (1, "rate_limit_error", 429)


def test_the_key_is_redacted_from_what_dify_says() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return dify_error(401, "unauthorized", f"Access token {KEY} is invalid")

    with client(handler) as dify, pytest.raises(DifyError) as caught:
        dify.info()
    assert caught.value.message == (
        "Dify answered GET /info with HTTP 401 unauthorized: Access token (sensitive) is invalid"
    )
    assert caught.value.dify_message == "Access token (sensitive) is invalid"


def test_a_redirect_is_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://login.example.com"})

    with client(handler) as dify, pytest.raises(DifyError) as caught:
        dify.info()
    assert caught.value.hint == "callbackUrl redirects: use the final Dify API base URL instead"


def test_a_streamed_answer_and_its_size_limit() -> None:
    events = [
        {"event": "message", "answer": "Hi", "conversation_id": "c"},
        {"event": "message_end", "conversation_id": "c"},
    ]
    text = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events)

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["response_mode"] == "streaming"
        return httpx.Response(200, text=text, headers={"Content-Type": "text/event-stream"})

    with client(handler) as dify:
        reply = dify.send("/chat-messages", {"response_mode": "streaming", "query": "q"})
    assert (reply.answer, reply.conversation_id) == ("Hi", "c")

    def endless(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"data: " + b"x" * (9 * 1024 * 1024))

    with client(endless) as dify, pytest.raises(DifyError, match="longer than 8 MiB"):
        dify.send("/chat-messages", {"response_mode": "streaming"})


def test_an_error_answer_to_a_stream_request_is_read_as_json() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return dify_error(400, "invalid_param", "query is required")

    with client(handler) as dify, pytest.raises(DifyError) as caught:
        dify.send("/chat-messages", {"response_mode": "streaming"})
    assert (caught.value.endpoint, caught.value.code) == ("POST /chat-messages", "invalid_param")
