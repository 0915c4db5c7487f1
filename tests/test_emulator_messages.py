"""The emulator's message runtime over loopback: publish.json, webhooks with RongCloud's
callback signature, Dify integrations through the stand-in, conversations kept."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.dify.routing import DifyRoute
from provisioner.emulator import EmulatorServer
from provisioner.emulator.admission.ratelimit import SlidingWindowLimiter
from provisioner.emulator.admission.signature import SignatureVerifier
from provisioner.emulator.app import EmulatorState, build_app
from provisioner.emulator.dify.apps import DifyApp
from provisioner.emulator.faults import FaultInjector
from provisioner.emulator.im.loopback import pinned_loopback
from provisioner.emulator.im.messages import CONVERSATION_TTL_MS, Message, MessageStore
from provisioner.emulator.im.publish import message_routes
from provisioner.emulator.im.runtime import MessageRuntime, shown_url, signed_url
from provisioner.emulator.serving import ThreadedServer
from provisioner.emulator.store import BotStore
from tests.test_emulator import Api, signed_headers

APP_KEY = "msg-app"
APP_SECRET = "msg-secret-0123456789"
CHAT_KEY = "app-msg-chat-key-77"
FLOW_KEY = "app-msg-flow-key-88"
TEXT_KEY = "app-msg-text-key-99"
DIFY_APPS = [
    DifyApp(CHAT_KEY, "chat", name="Buddy"),
    DifyApp(FLOW_KEY, "advanced-chat", name="Flow"),
    DifyApp(TEXT_KEY, "completion", name="Writer"),
]


class Receiver:
    """A webhook receiver on loopback that keeps every request it gets."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []

        async def hook(request: Request) -> Response:
            self.requests.append(
                {
                    "query": dict(request.query_params),
                    "path": request.url.path,
                    "content_type": request.headers.get("content-type"),
                    "body": json.loads(await request.body()),
                }
            )
            return JSONResponse({"ok": True}, self.status)

        self.server = ThreadedServer(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=0,
            thread_name="webhook-receiver",
            what="the webhook receiver",
        )

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook?token=s3cr3t-token"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}, dify_apps=DIFY_APPS) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


def create(http: httpx.Client, user_id: str, *integrations: dict[str, Any]) -> None:
    body = {
        "userId": user_id,
        "name": "Bot",
        "type": "AI",
        "profileUrl": "https://example.com/p.png",
        "metadata": {"v": "1"},
        "integrations": list(integrations),
    }
    Api(http, APP_KEY, APP_SECRET).ok("create", body)


def dify(kind: str, key: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "callbackUrl": "https://api.dify.ai/v1",
        "auth": {"apiKey": key},
        **fields,
    }


def publish(
    http: httpx.Client, text: str, *, to: str = "bot-1", sender: str = "u1", **form: str
) -> httpx.Response:
    data = {
        "fromUserId": sender,
        "toUserId": to,
        "objectName": "RC:TxtMsg",
        "content": json.dumps({"content": text, "extra": ""}),
        **form,
    }
    return http.post(
        "/message/private/publish.json", data=data, headers=signed_headers(APP_KEY, APP_SECRET)
    )


def settled(server: EmulatorServer, user: str = "u1", bot: str = "bot-1") -> dict[str, Any]:
    """The conversation once no delivery is pending (polls; fails after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        view = server.conversation(APP_KEY, user, bot)
        pending = [
            d for m in view["messages"] for d in m.get("deliveries", []) if d["status"] == "pending"
        ]
        if not pending:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.02)


def answered(server: EmulatorServer, user: str = "u1", bot: str = "bot-1") -> dict[str, Any]:
    """:func:`settled`, every delivery of it delivered (else the whole view is shown)."""
    view = settled(server, user, bot)
    statuses = [d["status"] for m in view["messages"] for d in m.get("deliveries", [])]
    assert set(statuses) == {"delivered"}, json.dumps(view, ensure_ascii=False, indent=1)
    return view


def sent(http: httpx.Client, text: str, **fields: str) -> None:
    """:func:`publish`, answered with 200."""
    response = publish(http, text, **fields)
    assert response.status_code == 200, response.text


def texts(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["fromUserId"], json.loads(m["content"])["content"]) for m in view["messages"]]


# --- publish.json ---------------------------------------------------------------------------


def test_publish_answers_message_uids(http: httpx.Client) -> None:
    response = publish(http, "hi", to="someone")
    assert response.status_code == 200
    [uid] = response.json()["messageUIDs"]
    assert uid["userId"] == "someone"
    assert len(uid["messageUID"]) == 19 and uid["messageUID"].count("-") == 3


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"fromUserId": ""}, "fromUserId: is required"),
        ({"objectName": "x" * 33}, "objectName: must be at most 32 characters"),
        ({"content": "{not json"}, "content: must be a JSON text"),
    ],
)
def test_publish_checks_the_form(http: httpx.Client, form: dict[str, str], message: str) -> None:
    response = publish(http, "hi", **form)
    assert (response.status_code, response.json()) == (400, {"code": 1002, "errorMessage": message})


def test_publish_needs_recipients_and_a_signature(http: httpx.Client) -> None:
    body = "fromUserId=u1&objectName=RC%3ATxtMsg&content=%7B%7D"
    headers = {
        **signed_headers(APP_KEY, APP_SECRET),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = http.post("/message/private/publish.json", content=body, headers=headers)
    assert response.json() == {"code": 1002, "errorMessage": "toUserId: is required"}
    unsigned = http.post("/message/private/publish.json", data={"fromUserId": "u1"})
    assert unsigned.status_code == 401


# --- webhooks ----------------------------------------------------------------------------------


def test_a_message_reaches_a_webhook_with_the_documented_payload_and_signature(
    http: httpx.Client, server: EmulatorServer
) -> None:
    with Receiver() as receiver:
        hook_url = receiver.url
        hook = {"type": "webhook", "callbackUrl": hook_url, "events": ["message:private"]}
        create(http, "bot-1", hook)
        before = int(time.time() * 1000)
        publish(http, "hello hook")
        view = settled(server)
    [request] = receiver.requests
    query = request["query"]
    assert query["token"] == "s3cr3t-token"
    expected = hashlib.sha1(
        (APP_SECRET + query["nonce"] + query["signTimestamp"]).encode()
    ).hexdigest()
    assert query["signature"] == expected
    assert int(query["signTimestamp"]) >= before  # milliseconds
    assert request["content_type"] == "application/json"
    body = request["body"]
    assert body == {
        "type": "message:private",
        "timestamp": body["timestamp"],
        "bot": {
            "userId": "bot-1",
            "name": "Bot",
            "profileUrl": "https://example.com/p.png",
            "type": "AI",
            "metadata": {"v": "1"},
        },
        "data": {
            "fromUserId": "u1",
            "toUserId": "bot-1",
            "objectName": "RC:TxtMsg",
            "content": '{"content": "hello hook", "extra": ""}',
            "channelType": "PERSON",
        },
    }
    [delivery] = view["messages"][0]["deliveries"]
    assert delivery == {
        "integration": "webhook",
        "target": hook_url.split("?")[0],
        "status": "delivered",
        "detail": "HTTP 200",
    }
    assert "s3cr3t-token" not in json.dumps(view)


def test_a_webhook_off_this_machine_is_not_called(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc?t=x"})
    publish(http, "hi")
    [delivery] = settled(server)["messages"][0]["deliveries"]
    assert delivery == {
        "integration": "webhook",
        "target": "https://hooks.example.com/rc",
        "status": "skipped",
        "detail": "not sent: the emulator delivers webhooks only to this machine (a host that "
        "resolves to loopback addresses only)",
    }


def test_a_webhook_name_is_resolved_and_the_connection_pinned(
    http: httpx.Client, server: EmulatorServer
) -> None:
    with Receiver() as receiver:
        port = urlsplit(receiver.url).port
        named = f"http://localhost:{port}/hook"
        unresolved = f"http://hooks.localhost:{port}/hook"  # no longer trusted by its spelling
        create(http, "bot-1", {"type": "webhook", "callbackUrl": named})
        create(http, "bot-2", {"type": "webhook", "callbackUrl": unresolved})
        publish(http, "by name")
        publish(http, "by a .localhost name", to="bot-2")
        [named_delivery] = settled(server)["messages"][0]["deliveries"]
        [unresolved_delivery] = settled(server, bot="bot-2")["messages"][0]["deliveries"]
    assert (named_delivery["status"], named_delivery["detail"]) == ("delivered", "HTTP 200")
    assert len(receiver.requests) == 1
    assert unresolved_delivery["status"] == "skipped"


def test_a_name_with_any_address_off_this_machine_is_not_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        found = {"both.test": ["127.0.0.1", "192.0.2.7"], "local.test": ["127.0.0.2", "::1"]}
        return [(None, None, None, "", (address, port)) for address in found[host]]

    async def pinned(url: str) -> Any:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)  # the seam
        return await pinned_loopback(url)

    assert asyncio.run(pinned("http://both.test:8080/h")) is None
    local = asyncio.run(pinned("https://local.test:8443/h?q=1"))
    assert local is not None
    assert (local.url, local.headers, local.extensions) == (
        "https://127.0.0.2:8443/h?q=1",
        {"Host": "local.test:8443"},
        {"sni_hostname": "local.test"},
    )
    assert asyncio.run(pinned_loopback("http://[::1]:9/h")) is not None
    assert asyncio.run(pinned_loopback("http://192.0.2.7/h")) is None


def test_a_failing_webhook_and_filters(http: httpx.Client, server: EmulatorServer) -> None:
    with Receiver(status=500) as receiver:
        create(
            http,
            "bot-1",
            {"type": "webhook", "callbackUrl": receiver.url, "objectNames": ["RC:TxtMsg"]},
            dify("dify_chat", CHAT_KEY, events=["message:group"]),
        )
        publish(http, "hi")
        publish(http, "a picture", objectName="RC:ImgMsg")
        view = settled(server)
    first, second = view["messages"]
    assert [(d["integration"], d["status"], d["detail"]) for d in first["deliveries"]] == [
        ("webhook", "failed", "HTTP 500")
    ]
    assert second["deliveries"] == []
    assert len(receiver.requests) == 1


def test_the_callback_signature_keeps_an_existing_query() -> None:
    url = signed_url("http://127.0.0.1:9/h?a=1", "secret", 1700000000000)
    query = parse_qs(urlsplit(url).query)
    assert query["a"] == ["1"] and query["signTimestamp"] == ["1700000000000"]
    assert (
        shown_url("https://user:pw@h.example.com:8443/x?token=t#f")
        == "https://h.example.com:8443/x"
    )


# --- Dify --------------------------------------------------------------------------------------


def test_a_two_turn_conversation_keeps_its_context(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", dify("dify_chat", CHAT_KEY, stream=False))
    sent(http, "hello")
    answered(server)
    sent(http, "what did I say?")
    view = answered(server)
    assert texts(view) == [
        ("u1", "hello"),
        ("bot-1", "Buddy (turn 1): you said “hello”."),
        ("u1", "what did I say?"),
        ("bot-1", "Buddy (turn 2): you said “what did I say?”. Before that you said “hello”."),
    ]
    conversation = view["difyConversation"]["conversationId"]
    assert server.dify is not None
    first, second = [r for r in server.dify.received() if r["user"] == "u1"]
    assert (first["conversation_id"], second["conversation_id"]) == ("", conversation)
    assert first["response_mode"] == "blocking" and first["query"] == "hello"
    assert first["inputs"]["bot_metadata_v"] == "1"
    assert first["inputs"]["data_content"] == '{"content": "hello", "extra": ""}'
    reply = view["messages"][1]
    assert reply["replyTo"] == view["messages"][0]["messageUID"]
    [delivery] = view["messages"][0]["deliveries"]
    assert delivery["target"] == "https://api.dify.ai/v1 (answered by the Dify stand-in)"
    assert (
        delivery["detail"]
        == f"Dify answered (blocking); stored as the bot's reply {reply['messageUID']}"
    )
    assert CHAT_KEY not in json.dumps(view)


def test_conversations_are_per_sender_and_in_order(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", dify("dify_chatflow", FLOW_KEY))
    sent(http, "one", sender="alice")
    sent(http, "two", sender="bob")
    sent(http, "three", sender="alice")
    sent(http, "four", sender="alice")
    alice, bob = answered(server, "alice"), answered(server, "bob")
    assert sorted(text for who, text in texts(alice) if who == "bot-1") == [
        "Flow (turn 1): you said “one”.",
        "Flow (turn 2): you said “three”. Before that you said “one”.",
        "Flow (turn 3): you said “four”. Before that you said “three”.",
    ]
    assert texts(bob)[1] == ("bot-1", "Flow (turn 1): you said “two”.")


def test_streaming_without_handle_response_stores_no_reply(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", dify("dify_chatflow", FLOW_KEY, handleResponse=False))
    publish(http, "hi")
    view = settled(server)
    assert texts(view) == [("u1", "hi")]
    [delivery] = view["messages"][0]["deliveries"]
    assert (delivery["status"], delivery["detail"]) == (
        "delivered",
        "Dify answered (streaming); not stored as a reply (handleResponse: false)",
    )


def test_a_completion_app_gets_the_text_as_inputs_query(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", dify("dify_completion", TEXT_KEY, stream=False))
    publish(http, "translate me")
    assert texts(settled(server))[1] == ("bot-1", "Writer (request 1 from this user): translate me")
    assert server.dify is not None
    [request] = [r for r in server.dify.received() if r["app"] == "Writer"]
    assert (
        request["inputs"]["query"] == "translate me"
        and request["path"] == "/v1/completion-messages"
    )


def test_a_failing_dify_call_is_recorded_without_the_key(
    http: httpx.Client, server: EmulatorServer
) -> None:
    create(http, "bot-1", dify("dify_chat", "app-not-a-stand-in-key"))
    publish(http, "hi")
    view = settled(server)
    [delivery] = view["messages"][0]["deliveries"]
    assert (delivery["status"], delivery["detail"]) == (
        "failed",
        "Dify answered POST /chat-messages with HTTP 401 unauthorized: Access token is invalid",
    )
    assert "app-not-a-stand-in-key" not in json.dumps(view)


def test_a_mid_stream_error_fails_the_delivery(http: httpx.Client, server: EmulatorServer) -> None:
    create(http, "bot-1", dify("dify_chatflow", FLOW_KEY))
    assert server.dify is not None
    server.dify.set_faults(stream_error=True)
    publish(http, "hi")
    [delivery] = settled(server)["messages"][0]["deliveries"]
    assert delivery["status"] == "failed"
    assert delivery["detail"].startswith("Dify reported an error in the middle of the stream")


def test_without_a_stand_in_no_dify_call_leaves_the_machine(http: httpx.Client) -> None:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}) as bare, httpx.Client(base_url=bare.url) as c:
        create(c, "bot-1", dify("dify_chat", CHAT_KEY))
        publish(c, "hi")
        [delivery] = settled(bare)["messages"][0]["deliveries"]
    assert delivery["status"] == "skipped"
    assert delivery["detail"] == (
        "not sent: the emulator calls only this machine, and no Dify stand-in runs "
        "(emulator.dify in app.yaml, or emulator serve --dify-apps)"
    )


def test_conversations_outlive_the_emulator_with_a_database(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite3"
    for text in ("first", "second"):
        emulator = EmulatorServer(apps={APP_KEY: APP_SECRET}, db_path=db, dify_apps=DIFY_APPS)
        with emulator as run, httpx.Client(base_url=run.url) as c:
            if text == "first":
                create(c, "bot-1", dify("dify_chat", CHAT_KEY, stream=False))
            sent(c, text)
            view = answered(run)
    assert texts(view)[-1] == (
        "bot-1",
        "Buddy (turn 2): you said “second”. Before that you said “first”.",
    )


# --- the 24 hours, the admin endpoint ---------------------------------------------------------


def test_a_dify_conversation_is_kept_for_24_hours(tmp_path: Path) -> None:
    now = [1_000_000]
    store = MessageStore.open(tmp_path / "m.sqlite3", clock_ms=lambda: now[0])
    store.keep_dify_session("k", "u", "b", "c1")
    now[0] += CONVERSATION_TTL_MS - 1
    assert store.dify_session("k", "u", "b") == ("c1", 1_000_000)
    now[0] += 1
    assert store.dify_session("k", "u", "b") is None
    store.close()


def test_a_conversation_is_read_at_one_moment(tmp_path: Path) -> None:
    """The server thread stores a reply, then settles the delivery; a reader in another
    thread (EmulatorServer.conversation from Python) never sees the delivery settled without
    its reply (40 of 467 reads did when the parts were read one by one)."""
    store = MessageStore.open(tmp_path / "m.sqlite3")
    done = threading.Event()

    def serve() -> None:
        for n in range(300):
            store.add("k", Message(f"q{n}", "u", "b", "RC:TxtMsg", "{}", n))
            delivery = store.add_delivery(f"q{n}", "dify_chat", "t", "pending", "")
            store.add("k", Message(f"a{n}", "b", "u", "RC:TxtMsg", "{}", n, reply_to=f"q{n}"))
            store.settle_delivery(delivery, "delivered", "stored")
        done.set()

    server = threading.Thread(target=serve)
    server.start()
    try:
        while not done.is_set():
            read = store.conversation("k", "u", "b")
            replied = {m.reply_to for m in read.messages if m.reply_to}
            settled = {
                uid
                for uid, fired in read.deliveries.items()
                if any(delivery["status"] == "delivered" for delivery in fired)
            }
            assert settled <= replied, sorted(settled - replied)
    finally:
        server.join()
        store.close()


def test_the_conversation_endpoint(
    http: httpx.Client, server: EmulatorServer, tmp_path: Path
) -> None:
    missing = http.get("/_emulator/conversation", params={"appKey": APP_KEY, "userId": "u1"})
    assert (missing.status_code, missing.json()) == (
        400,
        {"code": 1002, "errorMessage": "botId: is required (?appKey=...&userId=...&botId=...)"},
    )
    params = {"appKey": APP_KEY, "userId": "u1", "botId": "bot-1"}
    answer = http.get("/_emulator/conversation", params=params).json()
    assert answer == {"code": 200, **server.conversation(APP_KEY, "u1", "bot-1")}

    bots = BotStore.open(tmp_path / "b.sqlite3")
    messages = MessageStore.open(tmp_path / "b.sqlite3")
    state = EmulatorState(
        store=bots,
        verifier=SignatureVerifier({APP_KEY: APP_SECRET}),
        limiter=SlidingWindowLimiter(100),
        faults=FaultInjector(),
    )
    runtime = MessageRuntime(bots=bots, messages=messages, apps={}, route=DifyRoute(None))

    async def call() -> httpx.Response:
        app = build_app(state, message_routes(state, runtime))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return await client.get("/_emulator/conversation", params=params)

    try:
        assert asyncio.run(call()).status_code == 403
    finally:
        messages.close()
        bots.close()
