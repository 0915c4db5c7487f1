"""The Dify stand-in over real loopback HTTP: Dify's endpoints, envelope, codes, streams,
conversation memory and faults."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.dify.protocol import SseDecoder
from provisioner.emulator.dify.apps import DifyApp, DifyInput
from provisioner.emulator.dify.server import DifyStandIn
from provisioner.errors import ConfigError, EmulatorError

CHAT_KEY = "app-chat-key-0001"
FLOW_KEY = "app-flow-key-0002"
TEXT_KEY = "app-text-key-0003"
AGENT_KEY = "app-agent-key-0004"
NEW_AGENT_KEY = "app-new-agent-0005"
OFF_KEY = "app-off-key-0006"
OLD_KEY = "app-old-key-0007"
OLD_OFF_KEY = "app-old-off-0008"
DRAFT_KEY = "app-draft-key-0009"
FLOW_WITH_INPUT_KEY = "app-flow-input-0010"
GONE_KEY = "app-gone-key-0011"
LIMITED_KEY = "app-limited-0012"
SHORT_TEXT_KEY = "app-short-text-0013"

APPS = [
    DifyApp(CHAT_KEY, "chat", name="Helper"),
    DifyApp(FLOW_KEY, "advanced-chat", name="Flow"),
    DifyApp(TEXT_KEY, "completion", name="Writer", inputs=(DifyInput("query"),)),
    DifyApp(AGENT_KEY, "agent-chat", name="Agent"),
    DifyApp(NEW_AGENT_KEY, "agent", name="New agent"),
    DifyApp(OFF_KEY, "chat", name="Off", enabled=False),
    DifyApp(OLD_KEY, "chat", name="Old", legacy=True),
    DifyApp(OLD_OFF_KEY, "chat", name="Old off", legacy=True, enabled=False),
    DifyApp(DRAFT_KEY, "chat", name="Draft", published=False),
    DifyApp(
        FLOW_WITH_INPUT_KEY,
        "advanced-chat",
        name="Form",
        inputs=(DifyInput("city"), DifyInput("mood", required=False, kind="select")),
    ),
    DifyApp(GONE_KEY, "chat", name="Gone", deleted=True),
    DifyApp(
        LIMITED_KEY,
        "chat",
        name="Limited",
        inputs=(
            DifyInput("data_content", max_length=48),
            DifyInput("tone", kind="select", options=("calm", "brisk")),
            DifyInput("note", required=False, kind="paragraph"),
            DifyInput("age", required=False, kind="number"),
        ),
    ),
    DifyApp(SHORT_TEXT_KEY, "completion", name="Short", inputs=(DifyInput("query", max_length=8),)),
]


@pytest.fixture(scope="module")
def dify() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as stand_in:
        yield stand_in


@pytest.fixture
def http(dify: DifyStandIn) -> Iterator[httpx.Client]:
    dify.set_faults(busy=0, quota=False, stream_error=False)
    with httpx.Client(base_url=dify.api_base) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(
    http: httpx.Client, key: str, query: str, *, user: str = "u1", **fields: Any
) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": user, "response_mode": "blocking", **fields}
    return http.post("/chat-messages", json=body, headers=auth(key))


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any] | None]]:
    decoder = SseDecoder()
    found = []
    for line in response.text.split("\n"):
        event = decoder.feed(line)
        if event is not None:
            name, data = event
            found.append((name, json.loads(data) if data else None))
    return found


def envelope(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


# --- info, parameters, keys --------------------------------------------------------------------


def test_info_reports_name_and_mode(http: httpx.Client) -> None:
    assert http.get("/info", headers=auth(FLOW_KEY)).json() == {
        "name": "Flow",
        "description": "Chatflow stand-in",
        "tags": [],
        "mode": "advanced-chat",
        "author_name": "provisioner",
    }


def test_legacy_info_has_no_mode(http: httpx.Client) -> None:
    assert http.get("/info", headers=auth(OLD_KEY)).json() == {
        "name": "Old",
        "description": "Chatbot stand-in",
    }


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization header must be provided and start with 'Bearer'"),
        (
            {"Authorization": f"Basic {CHAT_KEY}"},
            "Authorization header must be provided and start with 'Bearer'",
        ),
        ({"Authorization": "Bearer app-unknown"}, "Access token is invalid"),
    ],
)
def test_a_missing_or_unknown_key_is_401(
    http: httpx.Client, headers: dict[str, str], message: str
) -> None:
    assert envelope(http.get("/info", headers=headers)) == (
        401,
        {"code": "unauthorized", "message": message, "status": 401},
    )


def test_a_disabled_app_is_403_and_404_on_legacy_dify(http: httpx.Client) -> None:
    assert envelope(http.get("/info", headers=auth(OFF_KEY))) == (
        403,
        {"code": "forbidden", "message": "The app's API service has been disabled.", "status": 403},
    )
    status, body = envelope(http.get("/parameters", headers=auth(OLD_OFF_KEY)))
    assert (status, body["code"]) == (404, "not_found")


def test_a_deleted_app_is_403_the_app_no_longer_exists(http: httpx.Client) -> None:
    assert envelope(http.get("/info", headers=auth(GONE_KEY))) == (
        403,
        {"code": "forbidden", "message": "The app no longer exists.", "status": 403},
    )


def test_parameters_lists_the_input_form(http: httpx.Client) -> None:
    body = http.get("/parameters", headers=auth(FLOW_WITH_INPUT_KEY)).json()
    assert body["user_input_form"] == [
        {
            "text-input": {
                "label": "city",
                "variable": "city",
                "required": True,
                "default": "",
                "max_length": 0,
            }
        },
        {
            "select": {
                "label": "mood",
                "variable": "mood",
                "required": False,
                "default": "",
                "options": [],
            }
        },
    ]
    limited = http.get("/parameters", headers=auth(LIMITED_KEY)).json()["user_input_form"]
    assert limited[0]["text-input"]["max_length"] == 48
    assert limited[1]["select"]["options"] == ["calm", "brisk"]


def test_an_unpublished_app_is_app_unavailable(http: httpx.Client) -> None:
    expected = (
        400,
        {
            "code": "app_unavailable",
            "message": "App unavailable, please check your app configurations.",
            "status": 400,
        },
    )
    assert envelope(http.get("/parameters", headers=auth(DRAFT_KEY))) == expected
    assert envelope(chat(http, DRAFT_KEY, "hi")) == expected


def test_unknown_route_is_in_the_envelope(http: httpx.Client) -> None:
    status, body = envelope(http.get("/workflows/run", headers=auth(CHAT_KEY)))
    assert (status, body["code"], body["status"]) == (404, "not_found", 404)


# --- generation ----------------------------------------------------------------------------


def test_a_conversation_counts_its_turns_per_user(http: httpx.Client, dify: DifyStandIn) -> None:
    first = chat(http, CHAT_KEY, "hello", user="alice").json()
    assert first["answer"] == "Helper (turn 1): you said “hello”."
    assert (first["event"], first["mode"]) == ("message", "chat")
    conversation = first["conversation_id"]
    second = chat(http, CHAT_KEY, "again", user="alice", conversation_id=conversation).json()
    assert second["answer"] == ("Helper (turn 2): you said “again”. Before that you said “hello”.")
    assert second["conversation_id"] == conversation
    fresh = chat(http, CHAT_KEY, "hello", user="alice", conversation_id="").json()
    assert fresh["answer"].startswith("Helper (turn 1)")
    assert [c["turns"] for c in dify.conversations("alice")] == [2, 1]


def test_a_conversation_of_another_user_or_app_does_not_exist(http: httpx.Client) -> None:
    conversation = chat(http, CHAT_KEY, "hello", user="bob").json()["conversation_id"]
    expected = (404, {"code": "not_found", "message": "Conversation Not Exists.", "status": 404})
    assert envelope(chat(http, CHAT_KEY, "x", user="eve", conversation_id=conversation)) == expected
    assert envelope(chat(http, FLOW_KEY, "x", user="bob", conversation_id=conversation)) == expected
    unknown = "9a0c3e42-5d7b-4a37-9b8f-21c1d0f3a001"
    assert envelope(chat(http, CHAT_KEY, "x", user="bob", conversation_id=unknown)) == expected


PYDANTIC = "1 validation error for ChatRequestPayload\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user": ""}, "Arg user must be provided."),
        ({"query": ""}, "query is required"),
        (
            {"conversation_id": "nope"},
            PYDANTIC + "conversation_id\n  Value error, conversation_id must be a valid UUID "
            "[type=value_error, input_value='nope', input_type=str]",
        ),
        (
            {"inputs": []},
            PYDANTIC + "inputs\n  Input should be a valid dictionary [type=dict_type, "
            "input_value=[], input_type=list]",
        ),
        (
            {"response_mode": "fast"},
            PYDANTIC + "response_mode\n  Input should be 'blocking' or 'streaming' "
            "[type=literal_error, input_value='fast', input_type=str]",
        ),
    ],
)
def test_invalid_parameters_as_dify_words_them(
    http: httpx.Client, fields: dict[str, Any], message: str
) -> None:
    body = {"inputs": {}, "query": "q", "user": "u1", **fields}
    status, answer = envelope(http.post("/chat-messages", json=body, headers=auth(CHAT_KEY)))
    assert (status, answer["code"], answer["status"]) == (400, "invalid_param", 400)
    assert answer["message"].startswith(message)


def test_a_required_input_left_out_is_invalid_param(http: httpx.Client) -> None:
    status, body = envelope(chat(http, FLOW_WITH_INPUT_KEY, "hi"))
    assert (status, body["message"]) == (400, "city is required in input form")
    ok = chat(http, FLOW_WITH_INPUT_KEY, "hi", inputs={"city": "Beijing"})
    assert ok.status_code == 200


def test_routes_follow_the_app_mode(http: httpx.Client) -> None:
    status, body = envelope(chat(http, TEXT_KEY, "hi"))
    assert (status, body["code"]) == (400, "not_chat_app")
    completion = {"inputs": {"query": "hi"}, "user": "u1"}
    response = http.post("/completion-messages", json=completion, headers=auth(CHAT_KEY))
    assert envelope(response)[1]["code"] == "app_unavailable"


def test_agent_apps_refuse_blocking_mode(http: httpx.Client) -> None:
    status, body = envelope(chat(http, AGENT_KEY, "hi"))
    assert (status, body["code"], body["message"]) == (
        400,
        "invalid_param",
        "Agent Chat App does not support blocking mode",
    )


def test_a_new_agent_app_is_not_a_chat_app(http: httpx.Client) -> None:
    assert envelope(chat(http, NEW_AGENT_KEY, "hi", response_mode="streaming")) == (
        400,
        {
            "code": "not_chat_app",
            "message": "Please check if your app mode matches the right API route.",
            "status": 400,
        },
    )


def test_completion_counts_the_users_requests(http: httpx.Client) -> None:
    body = {"inputs": {"query": "translate me"}, "user": "carol", "response_mode": "blocking"}
    first = http.post("/completion-messages", json=body, headers=auth(TEXT_KEY)).json()
    second = http.post("/completion-messages", json=body, headers=auth(TEXT_KEY)).json()
    assert first["answer"] == "Writer (request 1 from this user): translate me"
    assert second["answer"] == "Writer (request 2 from this user): translate me"
    assert "conversation_id" not in first
    missing = {"inputs": {}, "user": "carol"}
    refused = http.post("/completion-messages", json=missing, headers=auth(TEXT_KEY))
    assert envelope(refused)[1]["message"] == "query is required in input form"


def test_a_chatflow_stream_has_pings_pieces_and_ends(http: httpx.Client) -> None:
    response = chat(http, FLOW_KEY, "hi there", response_mode="streaming")
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response)
    names = [data["event"] if data else name for name, data in found]
    assert names == [
        "ping",
        "workflow_started",
        "message",
        "ping",
        *["message"] * 6,  # the pieces after "Flow ": (turn / 1): / you / said / “hi / there”.
        "workflow_finished",  # Dify: the workflow ends, then the message
        "message_end",
    ]
    answer = "".join(data["answer"] for _, data in found if data and data["event"] == "message")
    assert answer == "Flow (turn 1): you said “hi there”."


def test_agent_streams(http: httpx.Client) -> None:
    old = [
        d["event"] for _, d in events(chat(http, AGENT_KEY, "hi", response_mode="streaming")) if d
    ]
    assert old[0] == "agent_thought" and set(old[1:-1]) == {"agent_message"}
    assert old[-1] == "message_end"


def test_stream_error_fault_ends_with_an_error_event(http: httpx.Client, dify: DifyStandIn) -> None:
    dify.set_faults(stream_error=True)
    response = chat(http, FLOW_KEY, "hi there", response_mode="streaming")
    assert response.status_code == 200
    tail = [data for _, data in events(response) if data][-2:]
    assert tail[0]["event"] == "workflow_finished" and tail[0]["data"]["status"] == "failed"
    assert {k: tail[1][k] for k in ("event", "status", "code")} == {
        "event": "error",
        "status": 400,
        "code": "completion_request_error",
    }


def test_busy_and_quota_faults(http: httpx.Client, dify: DifyStandIn) -> None:
    dify.set_faults(busy=2)
    codes = [envelope(http.get("/info", headers=auth(CHAT_KEY))) for _ in range(3)]
    assert [status for status, _ in codes] == [429, 429, 200]
    assert codes[0][1]["code"] == "too_many_requests"
    dify.set_faults(quota=True)
    status, body = envelope(http.get("/info", headers=auth(CHAT_KEY)))
    assert (status, body["code"]) == (429, "rate_limit_error")
    with pytest.raises(ConfigError, match="unknown Dify stand-in fault slow"):
        dify.set_faults(slow=True)


def test_received_requests_never_hold_a_key(http: httpx.Client, dify: DifyStandIn) -> None:
    chat(http, CHAT_KEY, "remember me", user="dave")
    [last] = [item for item in dify.received() if item["user"] == "dave"]
    assert last["query"] == "remember me" and last["response_mode"] == "blocking"
    assert CHAT_KEY not in json.dumps(dify.received())


# --- configuration and lifecycle -----------------------------------------------------------


def test_apps_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown mode 'bot'"):
        DifyApp("k", "bot")
    with pytest.raises(ConfigError, match="has an empty key"):
        DifyApp("", "chat")
    with pytest.raises(ConfigError, match="has the unknown type 'file'"):
        DifyApp("k", "chat", inputs=(DifyInput("x", kind="file"),))
    with pytest.raises(ConfigError, match="needs at least one app"):
        DifyStandIn([])
    assert "k" not in repr(DifyApp("k-secret-value", "chat"))


def test_conversations_survive_a_restart_with_a_database(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite3"
    with DifyStandIn(APPS[:1], db_path=db) as first, httpx.Client(base_url=first.api_base) as c:
        conversation = chat(c, CHAT_KEY, "one").json()["conversation_id"]
    with DifyStandIn(APPS[:1], db_path=db) as again, httpx.Client(base_url=again.api_base) as c:
        answer = chat(c, CHAT_KEY, "two", conversation_id=conversation).json()["answer"]
    assert answer.startswith("Helper (turn 2)")
    assert CHAT_KEY.encode() not in db.read_bytes()


def test_stop_leaves_no_thread_and_the_controls_need_a_running_stand_in() -> None:
    def threads() -> int:
        return sum(1 for thread in threading.enumerate() if thread.name == "provisioner-dify")

    before = threads()
    stand_in = DifyStandIn(APPS[:1]).start()
    assert threads() == before + 1
    with pytest.raises(EmulatorError, match="already running"):
        stand_in.start()
    stand_in.stop()
    stand_in.stop()
    assert threads() == before
    with pytest.raises(EmulatorError, match="is not running"):
        stand_in.received()
