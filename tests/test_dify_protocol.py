"""The pure Dify protocol: RongCloud's callback and request, SSE decoding, reading streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.dify.protocol import (
    SseDecoder,
    StreamReader,
    blocking_reply,
    dify_request,
    filled_inputs,
    flattened,
    message_text,
    private_message_callback,
    text_content,
)
from provisioner.errors import DifyError, DifyUnreachableError

BOT = {"userId": "bot-1", "name": "Helper", "profileUrl": "https://e.com/p.png", "type": "AI"}


def data(**fields: Any) -> str:
    return json.dumps(fields)


def test_the_callback_of_a_private_message() -> None:
    callback = private_message_callback(
        {**BOT, "metadata": {"v": "1"}, "integrations": []},
        from_user="u1",
        object_name="RC:TxtMsg",
        content=text_content("hi"),
        timestamp_ms=1700000000000,
    )
    assert callback == {
        "type": "message:private",
        "timestamp": 1700000000000,
        "bot": {**BOT, "metadata": {"v": "1"}},
        "data": {
            "fromUserId": "u1",
            "toUserId": "bot-1",
            "objectName": "RC:TxtMsg",
            "content": '{"content": "hi", "extra": ""}',
            "channelType": "PERSON",
        },
    }


def test_requests_put_the_text_where_rongcloud_does() -> None:
    callback = private_message_callback(
        BOT, from_user="u1", object_name="RC:TxtMsg", content=text_content("hi"), timestamp_ms=5
    )
    chat = dify_request("dify_chat", stream=True, callback=callback, user="u1")
    assert (chat["query"], chat["conversation_id"], chat["response_mode"]) == (
        "hi",
        "",
        "streaming",
    )
    assert chat["inputs"]["data_fromUserId"] == "u1" and chat["inputs"]["timestamp"] == "5"
    completion = dify_request("dify_completion", stream=False, callback=callback, user="u1")
    assert "query" not in completion and "conversation_id" not in completion
    assert (completion["inputs"]["query"], completion["response_mode"]) == ("hi", "blocking")
    again = dify_request(
        "dify_chatflow", stream=False, callback=callback, user="u1", conversation_id="c"
    )
    assert again["conversation_id"] == "c"


def test_flattening_and_message_text() -> None:
    assert flattened({"a": {"b": {"c": 1}}, "d": True, "e": None}) == {
        "a_b_c": "1",
        "d": "true",
        "e": "null",
    }
    assert message_text("RC:TxtMsg", '{"content": "hello"}') == "hello"
    assert message_text("RC:TxtMsg", "not json") == "not json"
    assert message_text("RC:TxtMsg", '{"other": 1}') == '{"other": 1}'
    assert message_text("RC:ImgMsg", '{"content": "x"}') == '{"content": "x"}'


def test_filled_inputs_follow_the_bot() -> None:
    chat = filled_inputs("dify_chat", {**BOT, "metadata": {"persona": "kind"}})
    assert "bot_metadata_persona" in chat and "query" not in chat
    assert "query" in filled_inputs("dify_completion", BOT)


def test_sse_decoder_handles_fields_comments_and_a_missing_last_blank_line() -> None:
    decoder = SseDecoder()
    lines = [": comment", "event: ping", "", 'data: {"a":', "data: 1}", "", "data:x"]
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    assert events == [("ping", ""), ("", '{"a":\n1}')]
    assert decoder.close() == ("", "x")
    assert decoder.close() is None


def reader(ticks: list[float] | None = None) -> StreamReader:
    clock = iter(ticks or [0.0, 0.25, 0.5, 0.75, 1.0])
    return StreamReader(
        "POST /chat-messages", secrets=["app-secret-key"], clock=lambda: next(clock)
    )


def test_a_stream_with_pings_pieces_and_the_end() -> None:
    stream = reader()
    stream.event("ping", "")
    stream.event("", data(event="message", answer="Hel", conversation_id="c1", message_id="m1"))
    stream.event("", data(event="message", answer="lo"))
    stream.event("", data(event="node_finished", data={"status": "succeeded"}))
    stream.event("", data(event="message_end", conversation_id="c1"))
    reply = stream.reply()
    assert (reply.answer, reply.conversation_id, reply.message_id) == ("Hello", "c1", "m1")
    assert reply.first_token_seconds == 0.25


def test_lines_are_fed_through_the_decoder_and_a_last_event_without_blank_line_counts() -> None:
    stream = reader()
    for line in [": keep-alive", "event: ping", "", f"data: {data(event='message', answer='Hi')}"]:
        stream.feed(line)
    stream.feed("")
    stream.feed(f"data: {data(event='message_end', conversation_id='c9')}")  # no blank line
    reply = stream.reply()
    assert (reply.answer, reply.conversation_id) == ("Hi", "c9")


def test_agent_pieces_win_over_the_closing_message_and_replace_resets() -> None:
    stream = reader()
    stream.event("", data(event="agent_message", answer="A"))
    stream.event("", data(event="agent_message", answer="B"))
    stream.event("", data(event="message", answer="AB"))
    stream.event("", data(event="message_end"))
    assert stream.reply().answer == "AB"
    replaced = reader()
    replaced.event("", data(event="message", answer="bad words"))
    replaced.event("", data(event="message_replace", answer="***"))
    replaced.event("", data(event="message_end"))
    assert replaced.reply().answer == "***"


def test_an_error_event_is_a_failure_with_the_key_redacted() -> None:
    stream = reader()
    stream.event("", data(event="message", answer="x"))
    with pytest.raises(DifyError) as caught:
        stream.event(
            "", data(event="error", status=400, code="quota", message="key app-secret-key")
        )
    assert caught.value.message == (
        "Dify reported an error in the middle of the stream from POST /chat-messages (after "
        "HTTP 200): quota: key (sensitive)"
    )
    assert (caught.value.status, caught.value.code) == (200, "quota")


def test_a_stream_that_never_ends() -> None:
    stream = reader()
    stream.event("", data(event="workflow_finished", data={"status": "failed"}))
    with pytest.raises(
        DifyUnreachableError, match=r"ended before message_end \(the workflow failed\)"
    ):
        stream.reply()
    with pytest.raises(DifyUnreachableError, match=r"\(the stream ended\)"):
        reader().reply()


@pytest.mark.parametrize("text", ["not json", "[1]", "{" * 100_000])
def test_an_event_that_is_not_a_json_object(text: str) -> None:
    with pytest.raises(DifyError, match="holds an event that is not a JSON object"):
        reader().event("", text)


def test_blocking_reply() -> None:
    reply = blocking_reply({"answer": "hi", "conversation_id": "c", "message_id": ""}, "POST /x")
    assert (reply.answer, reply.conversation_id, reply.message_id) == ("hi", "c", None)
    with pytest.raises(DifyError, match="holds no answer text"):
        blocking_reply({"answer": 1}, "POST /x")
