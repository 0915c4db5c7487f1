"""The Dify stand-in checks inputs as Dify's ``_validate_inputs`` does, and serves the history
(``GET /messages``, ``GET /conversations``) the way Dify's own Python SDK (``dify-client``)
reads it: its requests are reproduced here exactly (``Authorization`` and ``Content-Type:
application/json`` on every call, ``None`` parameters sent as ``name=`` by httpx)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from provisioner.emulator.dify.server import DifyStandIn
from tests.test_emulator_dify import (
    APPS,
    CHAT_KEY,
    FLOW_KEY,
    LIMITED_KEY,
    SHORT_TEXT_KEY,
    TEXT_KEY,
    auth,
    chat,
    envelope,
)

LIMITED_INPUTS = {"data_content": "short", "tone": "calm"}


@pytest.fixture(scope="module")
def dify() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as stand_in:
        yield stand_in


@pytest.fixture
def http(dify: DifyStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dify.api_base) as client:
        yield client


class SdkChatClient:
    """The requests of ``dify_client.ChatClient`` (langgenius/dify sdks/python-client):
    ``get_conversation_messages`` and ``get_conversations``, shape for shape."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self._client = httpx.Client(base_url=base_url)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def __enter__(self) -> SdkChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def get(self, path: str) -> httpx.Response:
        return self._client.get(path, headers=self._headers)

    def get_conversation_messages(
        self,
        user: str,
        conversation_id: str | None = None,
        first_id: str | None = None,
        limit: int | None = None,
    ) -> httpx.Response:
        params: dict[str, Any] = {"user": user}
        if conversation_id:
            params["conversation_id"] = conversation_id
        if first_id:
            params["first_id"] = first_id
        if limit:
            params["limit"] = limit
        return self._client.get("/messages", params=params, headers=self._headers)

    def get_conversations(
        self, user: str, last_id: str | None = None, limit: int | None = None
    ) -> httpx.Response:
        params = {"user": user, "last_id": last_id, "limit": limit, "pinned": None}
        return self._client.get("/conversations", params=params, headers=self._headers)


@pytest.fixture
def stack() -> Iterator[Callable[[SdkChatClient], SdkChatClient]]:
    with ExitStack() as clients:
        yield clients.enter_context


def refused(response: httpx.Response) -> tuple[int, str, str]:
    status, body = envelope(response)
    return status, body["code"], body["message"]


# --- inputs, as Dify checks them -----------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {**LIMITED_INPUTS, "data_content": "x" * 49},
            "data_content in input form must be less than 48 characters",
        ),
        (
            {**LIMITED_INPUTS, "tone": "angry"},
            "tone in input form must be one of the following: ['calm', 'brisk']",
        ),
        ({**LIMITED_INPUTS, "tone": 1}, "(type 'select') tone in input form must be a string"),
        (
            {**LIMITED_INPUTS, "data_content": 17},
            "(type 'text-input') data_content in input form must be a string",
        ),
        (
            {**LIMITED_INPUTS, "note": ["a"]},
            "(type 'paragraph') note in input form must be a string",
        ),
        ({**LIMITED_INPUTS, "data_content": None}, "data_content is required in input form"),
        ({**LIMITED_INPUTS, "age": "old"}, "age in input form must be a valid number"),
    ],
)
def test_inputs_are_refused_with_difys_message(
    http: httpx.Client, inputs: dict[str, Any], message: str
) -> None:
    assert refused(chat(http, LIMITED_KEY, "hi", inputs=inputs)) == (
        400,
        "invalid_param",
        message,
    )


def test_an_empty_string_is_given_and_numbers_may_be_text(http: httpx.Client) -> None:
    fine = {"data_content": "", "tone": "brisk", "age": "42", "other": {"dropped": True}}
    assert chat(http, LIMITED_KEY, "hi", inputs=fine).status_code == 200
    assert chat(http, LIMITED_KEY, "hi", inputs={**fine, "age": ""}).status_code == 200
    assert (
        chat(http, LIMITED_KEY, "hi", inputs={**fine, "data_content": "x" * 48}).status_code == 200
    )


def test_a_value_dify_does_not_expect_is_a_500(http: httpx.Client) -> None:
    status, code, _ = refused(chat(http, LIMITED_KEY, "hi", inputs={**LIMITED_INPUTS, "age": []}))
    assert (status, code) == (500, "internal_server_error")


def test_a_completion_query_longer_than_max_length_is_refused_streaming_too(
    http: httpx.Client,
) -> None:
    body = {"inputs": {"query": "nine char"}, "user": "u", "response_mode": "streaming"}
    response = http.post("/completion-messages", json=body, headers=auth(SHORT_TEXT_KEY))
    assert refused(response) == (
        400,
        "invalid_param",
        "query in input form must be less than 8 characters",
    )


# --- history --------------------------------------------------------------------------------


def test_the_sdk_reads_a_conversations_messages(
    dify: DifyStandIn, stack: Callable[[SdkChatClient], SdkChatClient]
) -> None:
    with httpx.Client(base_url=dify.api_base) as http:
        first = chat(http, CHAT_KEY, "one", user="sdk-user").json()
        conversation = first["conversation_id"]
        for text in ("two", "three", "four"):
            chat(http, CHAT_KEY, text, user="sdk-user", conversation_id=conversation)
    sdk = stack(SdkChatClient(dify.api_base, CHAT_KEY))
    page = sdk.get_conversation_messages("sdk-user", conversation).json()
    assert (page["limit"], page["has_more"]) == (20, False)
    assert [m["query"] for m in page["data"]] == ["one", "two", "three", "four"]
    assert page["data"][0]["answer"] == "Helper (turn 1): you said “one”."
    assert page["data"][0]["id"] == first["message_id"]
    assert page["data"][1]["parent_message_id"] == first["message_id"]
    assert set(page["data"][0]) == {
        "id",
        "conversation_id",
        "parent_message_id",
        "inputs",
        "query",
        "answer",
        "message_files",
        "feedback",
        "retriever_resources",
        "created_at",
        "agent_thoughts",
        "status",
        "error",
    }
    latest = sdk.get_conversation_messages("sdk-user", conversation, limit=2).json()
    assert ([m["query"] for m in latest["data"]], latest["has_more"]) == (["three", "four"], True)
    older = sdk.get_conversation_messages(
        "sdk-user", conversation, first_id=latest["data"][0]["id"], limit=2
    ).json()
    assert ([m["query"] for m in older["data"]], older["has_more"]) == (["one", "two"], False)


def test_messages_are_only_the_users_own(
    dify: DifyStandIn, stack: Callable[[SdkChatClient], SdkChatClient]
) -> None:
    with httpx.Client(base_url=dify.api_base) as http:
        conversation = chat(http, CHAT_KEY, "mine", user="owner").json()["conversation_id"]
    sdk = stack(SdkChatClient(dify.api_base, CHAT_KEY))
    gone = (404, "not_found", "Conversation Not Exists.")
    assert refused(sdk.get_conversation_messages("stranger", conversation)) == gone
    assert (
        refused(
            stack(SdkChatClient(dify.api_base, FLOW_KEY)).get_conversation_messages(
                "owner", conversation
            )
        )
        == gone
    )
    unknown_first = "0b5d1f2a-6c0e-4c43-8d3b-7f9e2a4c5d61"
    assert refused(sdk.get_conversation_messages("owner", conversation, unknown_first)) == (
        404,
        "not_found",
        "First Message Not Exists.",
    )
    status, code, message = refused(sdk.get_conversation_messages("owner"))
    assert (status, code) == (400, "invalid_param")
    assert message.startswith("1 validation error for MessageListQuery\nconversation_id\n")
    empty = sdk.get("/messages?user=owner&conversation_id=&limit=")
    assert empty.json() == {"limit": 20, "has_more": False, "data": []}
    status, code, message = refused(sdk.get_conversation_messages("owner", "not-a-uuid"))
    assert (status, code) == (400, "invalid_param")
    assert message.startswith("1 validation error for MessageListQuery\nconversation_id\n")


def test_the_sdk_lists_a_users_conversations(
    dify: DifyStandIn, stack: Callable[[SdkChatClient], SdkChatClient]
) -> None:
    with httpx.Client(base_url=dify.api_base) as http:
        older = chat(http, CHAT_KEY, "a", user="lister", inputs={"x": "1"}).json()
        newer = chat(http, CHAT_KEY, "b", user="lister").json()
    sdk = stack(SdkChatClient(dify.api_base, CHAT_KEY))
    page = sdk.get_conversations("lister").json()
    assert (page["limit"], page["has_more"]) == (20, False)
    ids = [c["conversation_id"] for c in (newer, older)]
    assert [c["id"] for c in page["data"]] == ids  # newest first (-updated_at)
    assert page["data"][0] == {
        "id": newer["conversation_id"],
        "name": "New conversation",
        "inputs": {},
        "status": "normal",
        "introduction": "",
        "created_at": page["data"][0]["created_at"],
        "updated_at": page["data"][0]["updated_at"],
    }
    first = sdk.get_conversations("lister", limit=1).json()
    assert ([c["id"] for c in first["data"]], first["has_more"]) == (ids[:1], True)
    rest = sdk.get_conversations("lister", last_id=ids[0], limit=1).json()
    assert ([c["id"] for c in rest["data"]], rest["has_more"]) == (ids[1:], False)
    unknown = "3f1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    assert refused(sdk.get_conversations("lister", last_id=unknown)) == (
        404,
        "not_found",
        "Last Conversation Not Exists.",
    )


def test_history_is_for_chat_apps(
    dify: DifyStandIn, stack: Callable[[SdkChatClient], SdkChatClient]
) -> None:
    sdk = stack(SdkChatClient(dify.api_base, TEXT_KEY))
    assert refused(sdk.get_conversations("u"))[:2] == (400, "not_chat_app")


def test_a_failed_stream_keeps_no_message(
    dify: DifyStandIn, stack: Callable[[SdkChatClient], SdkChatClient]
) -> None:
    dify.set_faults(stream_error=True)
    try:
        with httpx.Client(base_url=dify.api_base) as http:
            response = chat(http, CHAT_KEY, "lost", user="streamer", response_mode="streaming")
            conversation = response.text.split('"conversation_id": "')[1].split('"')[0]
    finally:
        dify.set_faults(stream_error=False)
    page = stack(SdkChatClient(dify.api_base, CHAT_KEY)).get_conversation_messages(
        "streamer", conversation
    )
    assert page.json()["data"] == []
