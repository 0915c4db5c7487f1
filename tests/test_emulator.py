"""The emulator's bot API over real loopback HTTP: signatures, endpoints, limits, faults.

Requests are signed here with a tiny helper (independent of provisioner.rongcloud).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from provisioner.emulator import EmulatorServer, FaultConfig
from provisioner.emulator.bots.profile import DEFAULT_BODY_LIMIT as MAX_BODY_BYTES
from provisioner.emulator.codes import DOCUMENTED_CODES, INVENTED_CODES

APP_KEY = "test-app"
APP_SECRET = "test-secret-0123456789"
OTHER_KEY = "other-app"
OTHER_SECRET = "other-secret-9876543210"


def signed_headers(
    app_key: str = APP_KEY,
    app_secret: str = APP_SECRET,
    *,
    nonce: str | None = None,
    timestamp: str | None = None,
    prefix: str = "",
) -> dict[str, str]:
    """The four signing headers RongCloud expects (timestamp in ms unless given)."""
    nonce = secrets.token_hex(8) if nonce is None else nonce
    timestamp = str(int(time.time() * 1000)) if timestamp is None else timestamp
    signature = hashlib.sha1((app_secret + nonce + timestamp).encode()).hexdigest()
    return {
        f"{prefix}App-Key": app_key,
        f"{prefix}Nonce": nonce,
        f"{prefix}Timestamp": timestamp,
        f"{prefix}Signature": signature,
    }


class Api:
    """Signed calls to one emulator."""

    def __init__(self, client: httpx.Client, app_key: str = APP_KEY, secret: str = APP_SECRET):
        self.client = client
        self.app_key = app_key
        self.secret = secret

    def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return self.client.post(
            f"/v3/bot/{path}.json",
            json=body,
            headers={**signed_headers(self.app_key, self.secret), **headers},
        )

    def ok(self, path: str, body: Any) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["code"] == 200
        return payload

    def get(self, *user_ids: str) -> list[dict[str, Any]]:
        return self.ok("get", {"userIds": list(user_ids)})["bots"]


def bot(user_id: str = "bot-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": user_id,
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {
                "type": "webhook",
                "callbackUrl": "https://hooks.example.com/rc",
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
            },
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "stream": False,
                "auth": {"apiKey": "app-dify-key-1234"},
            },
        ],
    }
    body.update(fields)
    return body


def assert_error(response: httpx.Response, status: int, code: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"code": code, "errorMessage": message}


def wait_for(condition: Callable[[], bool], *, timeout: float = 30.0) -> bool:
    """Poll ``condition`` every 5 ms until it holds (False when ``timeout`` passed first)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[EmulatorServer]:
    """One emulator for the tests that change nothing (signatures, parameter errors)."""
    with EmulatorServer(apps={APP_KEY: APP_SECRET, OTHER_KEY: OTHER_SECRET}) as server:
        yield server


@pytest.fixture
def shared(shared_emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A client of the shared emulator (faults reset after each test)."""
    with httpx.Client(base_url=shared_emulator.url, timeout=10) as http:
        yield http
    shared_emulator.set_faults(**FaultConfig().as_dict())


@pytest.fixture
def shared_api(shared: httpx.Client) -> Api:
    return Api(shared)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET, OTHER_KEY: OTHER_SECRET}) as server:
        yield server


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as http:
        yield http


@pytest.fixture
def api(client: httpx.Client) -> Api:
    return Api(client)


# signatures ---------------------------------------------------------------------------------


def test_signed_request_with_millisecond_timestamp_is_accepted(shared_api: Api) -> None:
    assert shared_api.ok("query", {})["total"] == 0


def test_signed_request_with_second_timestamp_is_accepted(shared: httpx.Client) -> None:
    headers = signed_headers(timestamp=str(int(time.time())))
    response = shared.post("/v3/bot/query.json", json={}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"code": 200, "bots": [], "total": 0, "hasNext": False}


def test_rc_prefixed_headers_are_accepted(shared: httpx.Client) -> None:
    response = shared.post("/v3/bot/query.json", json={}, headers=signed_headers(prefix="RC-"))
    assert response.status_code == 200


def test_wrong_secret_is_rejected(shared: httpx.Client) -> None:
    headers = signed_headers(app_secret="not-the-secret")
    response = shared.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, "Signature: does not match")


@pytest.mark.parametrize("skew_seconds", [-301, 301])
def test_timestamp_more_than_five_minutes_off_is_rejected(
    shared: httpx.Client, skew_seconds: int
) -> None:
    headers = signed_headers(timestamp=str(int((time.time() + skew_seconds) * 1000)))
    response = shared.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, "Timestamp: more than 5 minutes away from the server clock")


def test_timestamp_four_minutes_old_in_seconds_is_accepted(shared: httpx.Client) -> None:
    headers = signed_headers(timestamp=str(int(time.time()) - 240))
    assert shared.post("/v3/bot/query.json", json={}, headers=headers).status_code == 200


@pytest.mark.parametrize("timestamp", ["soon", "9" * 400, "-1700000000"])
def test_non_numeric_timestamp_is_rejected(shared: httpx.Client, timestamp: str) -> None:
    headers = signed_headers(timestamp=timestamp)
    response = shared.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, "Timestamp: must be seconds or milliseconds since the epoch")


class DifyPluginSigner:
    """Signs exactly like RongCloud's Dify plugin (rongcloud-plugins-dify, utils/rongcloud.py):
    ``Nonce = str(int(time.time()))``, a millisecond ``Timestamp``, lowercase hex SHA-1, and its
    own User-Agent. ``clock`` stands in for ``time.time`` so two calls share one second."""

    def __init__(self, clock: Callable[[], float], app_key: str = APP_KEY) -> None:
        self.clock = clock
        self.app_key = app_key

    def headers(self) -> dict[str, str]:
        now = self.clock()
        nonce = str(int(now))
        timestamp = str(int(now * 1000))
        signature = hashlib.sha1(f"{APP_SECRET}{nonce}{timestamp}".encode()).hexdigest()
        return {
            "App-Key": self.app_key,
            "Nonce": nonce,
            "Timestamp": timestamp,
            "Signature": signature,
            "User-Agent": "rc-dify-tool/0.0.1",
            "Content-Type": "application/json",
        }


def two_calls_in_one_second(client: httpx.Client) -> list[httpx.Response]:
    """Two queries signed by the Dify plugin 0.1 s and 0.6 s into the same wall-clock second."""
    second = int(time.time())
    moments = iter([second + 0.1, second + 0.6])
    signer = DifyPluginSigner(lambda: next(moments))
    return [
        client.post("/v3/bot/query.json", content=b"{}", headers=signer.headers()) for _ in range(2)
    ]


def go_sdk_nonce() -> str:
    """A nonce as RongCloud's Go SDK makes it, ``strconv.Itoa(rand.Int())``, with 19 digits
    (like about 89 % of them)."""
    return str(random.Random(4).randrange(10**18, 2**63))


@pytest.fixture(scope="module")
def strict_emulator() -> Iterator[EmulatorServer]:
    """An emulator that enforces the documented nonce rules (``strict_signatures``)."""
    apps = {APP_KEY: APP_SECRET, OTHER_KEY: OTHER_SECRET}
    with EmulatorServer(apps=apps, strict_signatures=True) as server:
        yield server


@pytest.fixture
def strict(strict_emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict_emulator.url, timeout=10) as http:
        yield http


def test_dify_plugin_signing_works_twice_in_one_second(shared: httpx.Client) -> None:
    first, second = two_calls_in_one_second(shared)
    assert first.request.headers["Nonce"] == second.request.headers["Nonce"]
    assert [first.status_code, second.status_code] == [200, 200]
    assert second.json() == {"code": 200, "bots": [], "total": 0, "hasNext": False}


def test_dify_plugin_signing_is_a_replay_in_strict_mode(strict: httpx.Client) -> None:
    first, second = two_calls_in_one_second(strict)
    assert first.status_code == 200
    assert_error(second, 401, 1004, "Nonce: already used (replayed request)")


def test_go_sdk_nonce_of_19_digits_is_accepted(shared: httpx.Client) -> None:
    nonce = go_sdk_nonce()
    assert len(nonce) == 19
    response = shared.post("/v3/bot/query.json", json={}, headers=signed_headers(nonce=nonce))
    assert response.status_code == 200


def test_go_sdk_nonce_of_19_digits_is_rejected_in_strict_mode(strict: httpx.Client) -> None:
    headers = signed_headers(nonce=go_sdk_nonce())
    response = strict.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, "Nonce: must be at most 18 characters")


def test_repeated_nonce_is_accepted_by_default(shared: httpx.Client) -> None:
    headers = signed_headers()
    for _ in range(2):
        assert shared.post("/v3/bot/query.json", json={}, headers=headers).status_code == 200


def test_replayed_nonce_is_rejected_in_strict_mode(strict: httpx.Client) -> None:
    headers = signed_headers()
    assert strict.post("/v3/bot/query.json", json={}, headers=headers).status_code == 200
    response = strict.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, "Nonce: already used (replayed request)")


def test_same_nonce_under_another_app_key_is_not_a_replay(strict: httpx.Client) -> None:
    nonce = "shared-nonce"
    first = signed_headers(nonce=nonce)
    second = signed_headers(OTHER_KEY, OTHER_SECRET, nonce=nonce)
    assert strict.post("/v3/bot/query.json", json={}, headers=first).status_code == 200
    assert strict.post("/v3/bot/query.json", json={}, headers=second).status_code == 200


def test_nonce_of_18_characters_is_accepted_in_strict_mode(strict: httpx.Client) -> None:
    headers = signed_headers(nonce=secrets.token_hex(9))
    assert strict.post("/v3/bot/query.json", json={}, headers=headers).status_code == 200


@pytest.mark.parametrize("missing", ["App-Key", "Nonce", "Timestamp", "Signature"])
def test_missing_header_is_rejected(shared: httpx.Client, missing: str) -> None:
    headers = signed_headers()
    del headers[missing]
    response = shared.post("/v3/bot/query.json", json={}, headers=headers)
    assert_error(response, 401, 1004, f"missing header {missing} (or RC-{missing})")


def test_unknown_app_key_gets_rongclouds_own_answer(shared: httpx.Client) -> None:
    response = shared.post("/v3/bot/query.json", json={}, headers=signed_headers("nobody"))
    assert_error(response, 401, 1002, "Invalidate App-Key.")


def test_uppercase_signature_hex_is_accepted(shared: httpx.Client) -> None:
    headers = signed_headers()
    headers["Signature"] = headers["Signature"].upper()
    assert shared.post("/v3/bot/query.json", json={}, headers=headers).status_code == 200


# request ids --------------------------------------------------------------------------------


def test_request_id_is_echoed(shared_api: Api) -> None:
    response = shared_api.post("query", {}, **{"X-Request-ID": "req-42"})
    assert response.headers["X-Request-ID"] == "req-42"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v3/bot/query.json"), ("GET", "/v3/bot/query.json"), ("POST", "/v3/bot/x.json")],
)
def test_request_id_is_generated_on_every_response(
    shared: httpx.Client, method: str, path: str
) -> None:
    response = shared.request(method, path, json={})
    uuid.UUID(response.headers["X-Request-ID"])


def test_unknown_path_and_wrong_method_use_the_envelope(shared: httpx.Client) -> None:
    assert_error(shared.post("/v3/bot/nope.json"), 404, 404, "POST /v3/bot/nope.json: Not Found")
    assert_error(
        shared.get("/v3/bot/get.json"), 405, 405, "GET /v3/bot/get.json: Method Not Allowed"
    )


# create / get / query -----------------------------------------------------------------------


def test_create_then_get_returns_the_bot_with_defaults(api: Api) -> None:
    assert api.ok("create", bot()) == {"code": 200}
    [stored] = api.get("bot-1")
    created_at = stored.pop("createdAt")
    assert isinstance(created_at, int)
    assert created_at > 1_600_000_000_000  # milliseconds
    assert stored.pop("updatedAt") == created_at
    assert stored == {
        "userId": "bot-1",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {
                "type": "webhook",
                "callbackUrl": "https://hooks.example.com/rc",
                "enabled": True,
                "stream": True,
                "handleResponse": True,
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
            },
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "enabled": True,
                "stream": False,
                "handleResponse": True,
                "auth": {"apiKey": "app-dify-key-1234"},
            },
        ],
    }


def test_minimal_bot_returns_no_optional_fields(api: Api) -> None:
    minimal = bot(integrations=[{"type": "webhook", "callbackUrl": "http://h.example/cb"}])
    del minimal["metadata"]
    api.ok("create", minimal)
    [stored] = api.get("bot-1")
    assert "metadata" not in stored
    assert stored["integrations"] == [
        {
            "type": "webhook",
            "callbackUrl": "http://h.example/cb",
            "enabled": True,
            "stream": True,
            "handleResponse": True,
        }
    ]


def test_unknown_fields_are_ignored(api: Api) -> None:
    api.ok("create", bot(createdAt=1, agent={"x": 1}))
    [stored] = api.get("bot-1")
    assert "agent" not in stored
    assert stored["createdAt"] != 1


def test_get_returns_known_ids_in_request_order_without_duplicates(api: Api) -> None:
    for user_id in ("a", "b", "c"):
        api.ok("create", bot(user_id))
    found = api.ok("get", {"userIds": ["c", "missing", "a", "c"]})
    assert [b["userId"] for b in found["bots"]] == ["c", "a"]
    assert found["total"] == 2
    assert found["hasNext"] is False


def test_get_accepts_20_ids_and_rejects_21(api: Api) -> None:
    assert api.ok("get", {"userIds": [f"id-{n}" for n in range(20)]})["bots"] == []
    response = api.post("get", {"userIds": [f"id-{n}" for n in range(21)]})
    assert_error(response, 400, 1502, "userIds: at most 20 ids per call, got 21")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "userIds: is required"),
        ({"userIds": []}, "userIds: must hold at least one id"),
        ({"userIds": "bot-1"}, "userIds: must be an array of strings"),
        ({"userIds": ["ok", 7]}, "userIds[1]: must be a string"),
        ({"userIds": ["has space"]}, "userIds[0]: must not contain whitespace"),
    ],
)
def test_get_parameter_errors(shared_api: Api, body: dict[str, Any], message: str) -> None:
    assert_error(shared_api.post("get", body), 400, 1002, message)


def test_duplicate_user_id_is_rejected(api: Api) -> None:
    api.ok("create", bot())
    assert_error(api.post("create", bot()), 400, 1010, "userId: bot bot-1 already exists")


def test_bot_quota_is_ten_per_app(api: Api, client: httpx.Client) -> None:
    for n in range(10):
        api.ok("create", bot(f"bot-{n}"))
    response = api.post("create", bot("bot-10"))
    assert_error(response, 400, 1502, "bot quota reached: an app can have at most 10 bots")
    Api(client, OTHER_KEY, OTHER_SECRET).ok("create", bot("bot-10"))  # quota is per app
    api.ok("delete", {"userId": "bot-3"})
    api.ok("create", bot("bot-10"))
    assert api.ok("query", {"pageSize": 100})["total"] == 10


def test_apps_do_not_see_each_others_bots(api: Api, client: httpx.Client) -> None:
    api.ok("create", bot())
    other = Api(client, OTHER_KEY, OTHER_SECRET)
    assert other.get("bot-1") == []
    assert other.ok("query", {})["total"] == 0
    other.ok("create", bot())  # same userId in another app is fine


def test_update_is_a_full_replace(api: Api) -> None:
    api.ok("create", bot())
    [before] = api.get("bot-1")
    dify = {"type": "dify_chat", "callbackUrl": "https://d.example/v1", "auth": {"apiKey": "k2"}}
    replacement = bot(name="new name", integrations=[dify])
    del replacement["metadata"]
    assert api.ok("update", replacement) == {"code": 200}
    [after] = api.get("bot-1")
    assert after["name"] == "new name"
    assert "metadata" not in after
    assert after["integrations"] == [
        {
            "type": "dify_chat",
            "callbackUrl": "https://d.example/v1",
            "enabled": True,
            "stream": True,
            "handleResponse": True,
            "auth": {"apiKey": "k2"},
        }
    ]
    assert after["createdAt"] == before["createdAt"]
    assert after["updatedAt"] >= before["updatedAt"]


def test_update_of_unknown_bot_is_404(api: Api) -> None:
    assert_error(api.post("update", bot("ghost")), 404, 1404, "userId: bot ghost not found")


def test_delete_removes_the_bot_and_unknown_bot_is_404(api: Api) -> None:
    api.ok("create", bot())
    assert api.ok("delete", {"userId": "bot-1"}) == {"code": 200}
    assert api.get("bot-1") == []
    assert_error(api.post("delete", {"userId": "bot-1"}), 404, 1404, "userId: bot bot-1 not found")
    assert_error(api.post("delete", {}), 400, 1002, "userId: is required")


def test_query_pages_and_omits_integrations_by_default(api: Api) -> None:
    for user_id in ("a", "b", "c"):
        api.ok("create", bot(user_id))
    first = api.ok("query", {"page": 1, "pageSize": 2})
    assert [b["userId"] for b in first["bots"]] == ["a", "b"]
    assert (first["total"], first["hasNext"]) == (3, True)
    assert all("integrations" not in b for b in first["bots"])
    second = api.ok("query", {"page": 2, "pageSize": 2, "includeIntegration": True})
    assert [b["userId"] for b in second["bots"]] == ["c"]
    assert (second["total"], second["hasNext"]) == (3, False)
    assert len(second["bots"][0]["integrations"]) == 2
    beyond = api.ok("query", {"page": 5, "pageSize": 2})
    assert (beyond["bots"], beyond["total"], beyond["hasNext"]) == ([], 3, False)
    last = api.ok("query", {"page": 2**31 - 1, "pageSize": 100})
    assert (last["bots"], last["total"], last["hasNext"]) == ([], 3, False)


def test_query_default_page_size_is_10(api: Api) -> None:
    for n in range(10):
        api.ok("create", bot(f"bot-{n}"))
    result = api.ok("query", {})
    assert (len(result["bots"]), result["hasNext"]) == (10, False)
    result = api.ok("query", {"pageSize": 9})
    assert (len(result["bots"]), result["hasNext"]) == (9, True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pageSize": 101}, "pageSize: must be between 1 and 100, got 101"),
        ({"pageSize": 0}, "pageSize: must be between 1 and 100, got 0"),
        ({"page": 0}, "page: must be between 1 and 2147483647, got 0"),
        ({"page": 10**30}, f"page: must be between 1 and 2147483647, got {10**30}"),
        ({"page": "1"}, "page: must be an integer"),
        ({"page": True}, "page: must be an integer"),
        ({"includeIntegration": "yes"}, "includeIntegration: must be a boolean"),
    ],
)
def test_query_parameter_errors(shared_api: Api, body: dict[str, Any], message: str) -> None:
    assert_error(shared_api.post("query", body), 400, 1002, message)


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid bot with one field (dotted path, ``[n]`` for list items) set; DELETE removes it."""
    body = bot()
    target: Any = body
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p]
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return body


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("userId", DELETE, "userId: is required"),
        ("userId", "", "userId: must be 1-64 characters, got 0"),
        ("userId", "u" * 65, "userId: must be 1-64 characters, got 65"),
        ("userId", "two words", "userId: must not contain whitespace"),
        ("userId", 17, "userId: must be a string"),
        ("name", DELETE, "name: is required"),
        ("name", "", "name: must be 1-128 characters, got 0"),
        ("name", "n" * 129, "name: must be 1-128 characters, got 129"),
        ("type", "t" * 129, "type: must be 1-128 characters, got 129"),
        ("profileUrl", "p" * 257, "profileUrl: must be 1-256 characters, got 257"),
        ("profileUrl", DELETE, "profileUrl: is required"),
        ("metadata", {f"k{n}": "v" for n in range(17)}, "metadata: at most 16 pairs, got 17"),
        ("metadata", ["v"], "metadata: must be a JSON object"),
        ("metadata", {"k" * 33: "v"}, f"metadata.{'k' * 33}: key must be 1-32 characters"),
        ("metadata", {"": "v"}, "metadata.: key must be 1-32 characters"),
        ("metadata", {"version": True}, "metadata.version: must be a string"),
        ("metadata", {"version": ""}, "metadata.version: must be 1-128 characters, got 0"),
        ("metadata", {"v": "x" * 129}, "metadata.v: must be 1-128 characters, got 129"),
        ("integrations", DELETE, "integrations: is required"),
        ("integrations", [], "integrations: must hold at least one integration"),
        ("integrations", {"type": "webhook"}, "integrations: must be an array"),
        ("integrations[0]", "webhook", "integrations[0]: must be a JSON object"),
        ("integrations[0].type", DELETE, "integrations[0].type: is required"),
        (
            "integrations[0].type",
            "dify_workflow",
            "integrations[0].type: must be one of webhook, dify_chat, dify_completion, "
            "dify_chatflow",
        ),
        (
            "integrations[1].type",
            "webhook",
            "integrations[1].type: only one integration of type webhook per bot",
        ),
        ("integrations[0].callbackUrl", DELETE, "integrations[0].callbackUrl: is required"),
        (
            "integrations[0].callbackUrl",
            "/relative",
            "integrations[0].callbackUrl: must be an absolute URL",
        ),
        (
            "integrations[0].callbackUrl",
            "ftp://x.example/",
            "integrations[0].callbackUrl: must be an absolute URL",
        ),
        ("integrations[0].enabled", 1, "integrations[0].enabled: must be a boolean"),
        ("integrations[1].stream", "true", "integrations[1].stream: must be a boolean"),
        (
            "integrations[1].handleResponse",
            None,
            "integrations[1].handleResponse: must be a boolean",
        ),
        (
            "integrations[0].objectNames",
            "RC:TxtMsg",
            "integrations[0].objectNames: must be an array of strings",
        ),
        ("integrations[0].events", [3], "integrations[0].events[0]: must be a string"),
        ("integrations[1].auth", "key", "integrations[1].auth: must be a JSON object"),
        ("integrations[1].auth", {}, "integrations[1].auth.apiKey: is required"),
        (
            "integrations[1].auth",
            DELETE,
            "integrations[1].auth.apiKey: is required for Dify integrations",
        ),
    ],
)
@pytest.mark.parametrize("operation", ["create", "update"])
def test_bot_body_parameter_errors_name_the_field(
    shared_api: Api, operation: str, path: str, value: Any, message: str
) -> None:
    assert_error(shared_api.post(operation, _with(path, value)), 400, 1002, message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "body: must be valid JSON"),
        (b"\xff\xfe", "body: must be valid JSON"),
        (b"[" * 40_000 + b"]" * 40_000, "body: must be valid JSON"),
        (b"[1, 2]", "body: must be a JSON object"),
    ],
)
def test_body_that_is_not_a_json_object_is_rejected(
    shared: httpx.Client, content: bytes, message: str
) -> None:
    response = shared.post("/v3/bot/create.json", content=content, headers=signed_headers())
    assert_error(response, 400, 1002, message)


def test_body_of_exactly_the_limit_is_read(shared: httpx.Client) -> None:
    content = b'{"pad": "' + b"x" * (MAX_BODY_BYTES - 11) + b'"}'
    assert len(content) == MAX_BODY_BYTES
    response = shared.post("/v3/bot/query.json", content=content, headers=signed_headers())
    assert response.status_code == 200


def test_body_over_the_limit_is_refused(shared: httpx.Client) -> None:
    content = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = shared.post("/v3/bot/create.json", content=content, headers=signed_headers())
    assert_error(response, 413, 1508, "body: must be at most 102400 bytes")
    assert shared.post("/v3/bot/query.json", json={}, headers=signed_headers()).status_code == 200


def answer_to_partial_request(url: str, head: str, sent_body: bytes) -> tuple[str, bytes]:
    """Send a signed request head and only ``sent_body`` of its body over a raw socket, keep the
    connection open, and read the answer: ``(status line, body)``. It can only arrive if the
    emulator answers without waiting for the rest of the body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    headers = "".join(f"{name}: {value}\r\n" for name, value in signed_headers().items())
    request = f"{head}\r\nHost: {host}\r\n{headers}\r\n".encode() + sent_body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            received += received_more(sock)
        answer_head, _, body = received.partition(b"\r\n\r\n")
        status, *header_lines = answer_head.decode().split("\r\n")
        answer_headers = dict(line.lower().split(": ", 1) for line in header_lines)
        while len(body) < int(answer_headers["content-length"]):
            body += received_more(sock)
    return status, body


def received_more(sock: socket.socket) -> bytes:
    data = sock.recv(65536)  # the socket's timeout ends a wait for an answer that never comes
    assert data, "the emulator closed the connection before answering in full"
    return data


def test_declared_oversize_body_is_refused_before_it_is_sent(
    shared_emulator: EmulatorServer,
) -> None:
    head = (
        "POST /v3/bot/create.json HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}"
    )
    status, body = answer_to_partial_request(shared_emulator.url, head, b"")
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body) == {
        "code": 1508,
        "errorMessage": "body: must be at most 102400 bytes",
    }


def test_chunked_body_is_not_read_past_the_cap(shared_emulator: EmulatorServer) -> None:
    head = "POST /v3/bot/create.json HTTP/1.1\r\nTransfer-Encoding: chunked"
    chunk = b"x" * (64 * 1024)
    chunks = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = chunks * (MAX_BODY_BYTES // len(chunk) + 1)  # past the cap, and never finished
    status, body = answer_to_partial_request(shared_emulator.url, head, sent)
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["code"] == 1508


def test_limits_at_their_maximum_are_accepted(api: Api) -> None:
    body = bot(
        "u" * 64,
        name="n" * 128,
        type="t" * 128,
        profileUrl="p" * 256,
        metadata={f"{n:0>32}": "v" * 128 for n in range(16)},
    )
    api.ok("create", body)
    [stored] = api.get("u" * 64)
    assert len(stored["metadata"]) == 16


# api key masking ----------------------------------------------------------------------------


def test_api_key_is_returned_in_plain_text_by_default(api: Api) -> None:
    api.ok("create", bot())
    [stored] = api.get("bot-1")
    assert stored["integrations"][1]["auth"] == {"apiKey": "app-dify-key-1234"}


def test_api_key_is_masked_when_asked() -> None:
    with (
        EmulatorServer(apps={APP_KEY: APP_SECRET}, mask_api_keys=True) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        api = Api(client)
        api.ok("create", bot())
        [got] = api.get("bot-1")
        [listed] = api.ok("query", {"includeIntegration": True})["bots"]
        for view in (got, listed):
            assert view["integrations"][1]["auth"] == {"apiKey": "******"}
            assert "auth" not in view["integrations"][0]
        assert (
            "app-dify-key-1234"
            not in client.post(
                "/v3/bot/get.json", json={"userIds": ["bot-1"]}, headers=signed_headers()
            ).text
        )


# rate limit ---------------------------------------------------------------------------------


def test_rate_limit_per_app_key_and_endpoint() -> None:
    with (
        EmulatorServer(apps={APP_KEY: APP_SECRET, OTHER_KEY: OTHER_SECRET}, rate_limit=3) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        api = Api(client)
        statuses = []
        for _ in range(20):
            response = api.post("query", {})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "1"
                assert response.json()["code"] == 1008
                break
        assert statuses[-1] == 429
        # other endpoints and other app keys have their own windows
        assert api.post("get", {"userIds": ["x"]}).status_code == 200
        assert Api(client, OTHER_KEY, OTHER_SECRET).post("query", {}).status_code == 200
        stats = server.stats()
        key = f"{APP_KEY} /v3/bot/query.json"
        assert stats["max_per_second"][key] == 3
        assert stats["calls"][key] == len(statuses) - 1
        assert stats["rate_limited"][key] == 1
        assert stats["limit"] == 3


def test_rate_limit_message() -> None:
    with (
        EmulatorServer(apps={APP_KEY: APP_SECRET}, rate_limit=1) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        limited = Api(client)
        responses = [limited.post("query", {}) for _ in range(3)]
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected
    assert rejected[0].json() == {
        "code": 1008,
        "errorMessage": "rate limit: at most 1 calls per second per app key on /v3/bot/query.json",
    }


# faults -------------------------------------------------------------------------------------


def test_latency_is_applied_and_counted(api: Api, emulator: EmulatorServer) -> None:
    emulator.set_faults(latency_ms=1)
    api.ok("query", {})
    api.ok("query", {})
    assert emulator.stats()["faults"]["delayed"] == 2
    emulator.set_faults(latency_ms=0)
    api.ok("query", {})
    assert emulator.stats()["faults"]["delayed"] == 2


def test_a_waiting_request_follows_a_change_of_latency(emulator: EmulatorServer) -> None:
    """Raising latency_ms holds a request already waiting; lowering it releases it."""
    answers: list[int] = []

    def call() -> None:
        with httpx.Client(base_url=emulator.url, timeout=30) as http:
            answers.append(Api(http).post("query", {}).status_code)

    emulator.set_faults(latency_ms=60_000)
    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: emulator.stats()["faults"]["delayed"] == 1)
    emulator.set_faults(latency_ms=120_000)  # still held
    caller.join(0.2)
    assert caller.is_alive() and answers == []
    emulator.set_faults(latency_ms=0)  # released long before the 30 s client timeout
    caller.join(30)
    assert answers == [200]


def _statuses(api: Api, count: int) -> list[int]:
    return [api.post("query", {}).status_code for _ in range(count)]


def test_error_rate_is_deterministic_with_a_seed(api: Api, emulator: EmulatorServer) -> None:
    emulator.set_faults(error_rate=0.5, seed=7)
    first = _statuses(api, 20)
    emulator.set_faults(seed=7)
    second = _statuses(api, 20)
    draws = random.Random(7)
    expected = [500 if draws.random() < 0.5 else 200 for _ in range(20)]
    assert first == second == expected
    assert emulator.stats()["faults"]["errors"] == 2 * expected.count(500)


def test_injected_error_is_a_500_envelope_before_anything_else(
    client: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.set_faults(error_rate=1.0)
    response = client.post("/v3/bot/create.json", json=bot())  # not even signed
    assert_error(response, 500, 1000, "internal error (injected by the emulator)")
    emulator.set_faults(error_rate=0.0)
    assert Api(client).get("bot-1") == []


def test_burst_429_answers_the_next_n_requests(api: Api, emulator: EmulatorServer) -> None:
    emulator.set_faults(burst_429=2)
    first, second, third = (api.post("query", {}) for _ in range(3))
    for response in (first, second):
        assert_error(response, 429, 1008, "too many requests (injected 429 burst)")
        assert response.headers["Retry-After"] == "1"
    assert third.status_code == 200
    assert emulator.faults.burst_429 == 0
    assert emulator.stats()["faults"]["bursts"] == 2


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
def test_drop_after_commit_keeps_the_write_and_drops_the_connection(
    api: Api, emulator: EmulatorServer, operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if operation != "create":
        api.ok("create", bot())
    body = {"userId": "bot-1"} if operation == "delete" else bot(name="after the drop")
    emulator.set_faults(drop_after_commit=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post(operation, body)
    assert api.ok("query", {})["total"] >= 0  # reads are never dropped
    emulator.set_faults(drop_after_commit=0.0)
    stored = api.get("bot-1")
    if operation == "delete":
        assert stored == []
    else:
        assert stored[0]["name"] == "after the drop"
    assert emulator.stats()["faults"]["drops"] == 1
    assert emulator.stats()["committed"][f"{APP_KEY} /v3/bot/{operation}.json"] == 1
    noisy = [
        r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= logging.INFO
    ]
    assert noisy == []


def test_failed_write_is_never_dropped(api: Api, emulator: EmulatorServer) -> None:
    emulator.set_faults(drop_after_commit=1.0)
    assert_error(api.post("delete", {"userId": "ghost"}), 404, 1404, "userId: bot ghost not found")
    assert emulator.stats()["faults"]["drops"] == 0


def test_faults_given_at_start() -> None:
    faults = FaultConfig(burst_429=1, latency_ms=0.5)
    with (
        EmulatorServer(apps={APP_KEY: APP_SECRET}, faults=faults) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        api = Api(client)
        assert api.post("query", {}).status_code == 429
        assert api.post("query", {}).status_code == 200
        assert server.stats()["faults"] == {
            "delayed": 2,
            "errors": 0,
            "bursts": 1,
            "drops": 0,
            "random_codes": 0,
        }


RANDOM_CODE_MESSAGE = (
    "undocumented outcome: this code was drawn at random (random_undocumented_codes is on)"
)
NEVER_DRAWN = DOCUMENTED_CODES | INVENTED_CODES


def undocumented_outcomes(api: Api, client: httpx.Client) -> list[httpx.Response]:
    """One request for each outcome whose code the emulator invents (10 bots exist)."""
    return [
        api.post("create", bot("bot-0")),  # duplicate userId
        api.post("create", bot("bot-10")),  # the 10-bot quota
        api.post("get", {"userIds": [f"id-{n}" for n in range(21)]}),  # more than 20 ids
        api.post("update", bot("ghost")),  # unknown bot
        api.post("delete", {"userId": "ghost"}),  # unknown bot
        client.post("/v3/bot/nope.json", json={}),  # unknown path
        client.get("/v3/bot/get.json"),  # wrong method
    ]


@pytest.fixture
def ten_bots(api: Api) -> Api:
    for n in range(10):
        api.ok("create", bot(f"bot-{n}"))
    return api


def test_invented_codes_by_default(ten_bots: Api, client: httpx.Client) -> None:
    answers = [(r.status_code, r.json()["code"]) for r in undocumented_outcomes(ten_bots, client)]
    assert answers == [
        (400, 1010),
        (400, 1502),
        (400, 1502),
        (404, 1404),
        (404, 1404),
        (404, 404),
        (405, 405),
    ]


def test_random_undocumented_codes_replace_every_invented_code(
    ten_bots: Api, client: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.set_faults(random_undocumented_codes=True, seed=3)
    answers = undocumented_outcomes(ten_bots, client)
    drawn = [response.json()["code"] for response in answers]
    for response in answers:
        assert response.status_code == 400
        assert response.json()["errorMessage"] == RANDOM_CODE_MESSAGE
    assert not set(drawn) & NEVER_DRAWN
    assert len(set(drawn)) > 1  # drawn per answer, not one code for all
    assert emulator.stats()["faults"]["random_codes"] == 7
    emulator.set_faults(seed=3)  # the same seed draws the same codes again
    assert [r.json()["code"] for r in undocumented_outcomes(ten_bots, client)] == drawn
    assert ten_bots.ok("query", {})["total"] == 10  # nothing was written


def test_random_undocumented_codes_leave_documented_answers_alone(
    client: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.set_faults(random_undocumented_codes=True)
    api = Api(client)
    assert_error(
        api.post("create", bot(name="")), 400, 1002, "name: must be 1-128 characters, got 0"
    )
    bad_signature = client.post(
        "/v3/bot/query.json", json={}, headers=signed_headers(app_secret="wrong")
    )
    assert_error(bad_signature, 401, 1004, "Signature: does not match")
    unknown_key = client.post("/v3/bot/query.json", json={}, headers=signed_headers("nobody"))
    assert_error(unknown_key, 401, 1002, "Invalidate App-Key.")
    content = b" " * (MAX_BODY_BYTES + 1)
    too_large = client.post("/v3/bot/create.json", content=content, headers=signed_headers())
    assert_error(too_large, 413, 1508, "body: must be at most 102400 bytes")
    emulator.set_faults(burst_429=1)
    assert_error(api.post("query", {}), 429, 1008, "too many requests (injected 429 burst)")
    assert_error(
        client.get("/_emulator/nope"), 404, 404, "GET /_emulator/nope: Not Found"
    )  # the emulator's own admin API is not RongCloud's
    assert emulator.stats()["faults"]["random_codes"] == 0


def test_random_undocumented_codes_change_no_other_fault_draw(
    api: Api, emulator: EmulatorServer
) -> None:
    api.ok("create", bot())
    emulator.set_faults(random_undocumented_codes=True, error_rate=0.5, seed=7)
    statuses = [api.post("create", bot()).status_code for _ in range(20)]  # duplicates
    draws = random.Random(7)
    assert statuses == [500 if draws.random() < 0.5 else 400 for _ in range(20)]


def test_random_undocumented_codes_through_the_admin_endpoint(
    ten_bots: Api, client: httpx.Client
) -> None:
    response = client.post("/_emulator/faults", json={"random_undocumented_codes": True})
    assert response.json()["faults"]["random_undocumented_codes"] is True
    duplicate = ten_bots.post("create", bot("bot-1"))
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] not in NEVER_DRAWN
    client.post("/_emulator/faults", json={"random_undocumented_codes": False})
    assert_error(
        ten_bots.post("create", bot("bot-1")), 400, 1010, "userId: bot bot-1 already exists"
    )


def send_and_hang_up(url: str, path: str, body: bytes) -> None:
    """Send one whole signed request over a raw socket and close it without reading."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    headers = "".join(f"{name}: {value}\r\n" for name, value in signed_headers().items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)


def test_client_gone_before_the_body_is_read_is_quiet_and_commits_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    create = f"{APP_KEY} /v3/bot/create.json"
    with (
        EmulatorServer(apps={APP_KEY: APP_SECRET}) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        api = Api(client)
        api.ok("create", bot("bot-1"))
        server.set_faults(latency_ms=200)  # the body is read after the client hung up
        send_and_hang_up(server.url, "/v3/bot/create.json", json.dumps(bot("bot-2")).encode())
        assert wait_for(lambda: server.stats()["disconnected"].get(create) == 1)
        server.set_faults(latency_ms=0)
        duplicate = api.post("create", bot("bot-1"))
        assert_error(duplicate, 400, 1010, "userId: bot bot-1 already exists")
        assert [found["userId"] for found in api.get("bot-1", "bot-2")] == ["bot-1"]
        stats = server.stats()
    assert stats["calls"][create] == 3  # counted when admitted: all three
    assert stats["committed"] == {create: 1}  # the rejected duplicate and reads are not
    assert stats["disconnected"] == {create: 1}
    logged = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert [r.getMessage() for r in logged if r.levelno >= logging.INFO] == []


# admin endpoints ----------------------------------------------------------------------------


def test_admin_faults_roundtrip(client: httpx.Client, emulator: EmulatorServer) -> None:
    assert client.get("/_emulator/faults").json() == {
        "code": 200,
        "faults": {
            "latency_ms": 0,
            "error_rate": 0.0,
            "burst_429": 0,
            "drop_after_commit": 0.0,
            "random_undocumented_codes": False,
            "seed": None,
        },
    }
    response = client.post("/_emulator/faults", json={"burst_429": 1, "seed": 3})
    assert response.status_code == 200
    assert response.json()["faults"]["burst_429"] == 1
    assert emulator.faults.seed == 3
    assert Api(client).post("query", {}).status_code == 429
    assert client.get("/_emulator/faults").json()["faults"]["burst_429"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error_rate": 2}, "fault error_rate must be at least 0 and at most 1, got 2"),
        ({"latency_ms": "slow"}, "fault latency_ms must be a number, got 'slow'"),
        ({"burst_429": 1.5}, "fault burst_429 must be a whole number, got 1.5"),
        ({"seed": "x"}, "fault seed must be a whole number or null, got 'x'"),
        (
            {"random_undocumented_codes": "yes"},
            "fault random_undocumented_codes must be true or false, got 'yes'",
        ),
        ({"chaos": 1}, "unknown fault setting chaos"),
        ([1], "body: must be a JSON object"),
    ],
)
def test_admin_faults_rejects_bad_settings(shared: httpx.Client, body: Any, message: str) -> None:
    assert_error(shared.post("/_emulator/faults", json=body), 400, 1002, message)


def test_admin_stats_and_reset(api: Api, client: httpx.Client, emulator: EmulatorServer) -> None:
    api.ok("create", bot())
    api.ok("get", {"userIds": ["bot-1"]})
    stats = client.get("/_emulator/stats").json()
    assert stats["code"] == 200
    assert stats["calls"] == {f"{APP_KEY} /v3/bot/create.json": 1, f"{APP_KEY} /v3/bot/get.json": 1}
    assert stats["max_per_second"][f"{APP_KEY} /v3/bot/get.json"] == 1
    assert stats["limit"] == 100
    assert client.post("/_emulator/reset-stats").json() == {"code": 200}
    assert emulator.stats()["calls"] == {}
    assert client.get("/_emulator/stats").json()["calls"] == {}
