"""Reading answers: redaction, the envelope, bounded bodies, hints."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from provisioner.rongcloud.responses import (
    APP_KEY_HINT,
    HINTS,
    TOO_DEEP,
    UNREADABLE_HINT,
    OversizedAnswer,
    api_error,
    read_answer,
    read_body,
    redact,
)


def test_redact_longest_first() -> None:
    assert redact("key=abcdef123, part=abcdef", ["abcdef", "abcdef123"]) == (
        "key=(sensitive), part=(sensitive)"
    )


def test_read_answer_envelope() -> None:
    response = httpx.Response(
        400, json={"code": 1002, "errorMessage": "name: bad"}, headers={"X-Request-ID": "r-1"}
    )
    answer = read_answer(response, "mine", [])
    assert (answer.status, answer.code, answer.error_message, answer.request_id) == (
        400,
        1002,
        "name: bad",
        "r-1",
    )
    assert not answer.ok and not answer.rate_limited


def test_read_answer_without_a_body_or_request_id() -> None:
    answer = read_answer(httpx.Response(502, text="Bad Gateway"), "mine", [])
    assert (answer.code, answer.error_message, answer.request_id, answer.data) == (
        None,
        None,
        "mine",
        {},
    )


def test_boolean_code_is_not_a_code() -> None:
    assert read_answer(httpx.Response(200, json={"code": True}), "r", []).code is None


@pytest.mark.parametrize(
    ("status", "code", "message", "hint"),
    [
        (401, 1002, "Invalidate App-Key.", APP_KEY_HINT),
        (400, 1002, "appKey: unknown", APP_KEY_HINT),
        (400, 1002, "bad app key", APP_KEY_HINT),
        (400, 1002, "name: must be 1-128 characters, got 129", None),
        (400, 1004, "Invalidate App-Key.", HINTS[1004]),
        (401, 1002, "signature mismatch", HINTS[1004]),  # no App-Key: the 401's own hint
    ],
)
def test_hint_of_a_1002_depends_on_whether_it_names_the_app_key(
    status: int, code: int, message: str, hint: str | None
) -> None:
    response = httpx.Response(status, json={"code": code, "errorMessage": message})
    error = api_error("/v3/bot/query.json", read_answer(response, "r", []))
    assert error.hint == hint


def test_read_body_stops_at_the_first_chunk_past_the_limit() -> None:
    pulled: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"ab", b"cd", b"ef", b"gh"):
            pulled.append(chunk)
            yield chunk

    with pytest.raises(OversizedAnswer) as caught:
        read_body(httpx.Response(201, content=chunks()), limit=5)
    assert caught.value.status == 201
    assert pulled == [b"ab", b"cd", b"ef"]
    assert read_body(httpx.Response(200, content=iter([b"ab", b"cd"])), limit=4) == b"abcd"


@pytest.mark.parametrize(
    ("declared", "over"), [("5", True), ("9" * 5000, True), ("0004", False), ("4", False)]
)
def test_read_body_refuses_a_declared_length_over_the_limit(declared: str, over: bool) -> None:
    response = httpx.Response(200, headers={"Content-Length": declared}, content=b"abcd")
    if over:
        with pytest.raises(OversizedAnswer):
            read_body(response, limit=4)
    else:
        assert read_body(response, limit=4) == b"abcd"


def test_read_answer_says_why_deeply_nested_json_is_unusable() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = read_answer(httpx.Response(200), "r", [], body=deep)
    assert (answer.code, answer.data, answer.unreadable) == (None, {}, TOO_DEEP)
    error = api_error("/v3/bot/get.json", answer)
    assert error.message == (
        "RongCloud's answer to /v3/bot/get.json (HTTP 200) is unusable: its JSON is nested too "
        "deeply to decode (request id r)"
    )
    assert error.hint == UNREADABLE_HINT
    assert read_answer(httpx.Response(200), "r", [], body=b"[[1]]").unreadable is None
