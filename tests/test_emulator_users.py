"""``/user/getToken.json`` on the emulator (step 2 of RongCloud's guide): form-encoded and
signed, ``{code:200, userId, token}``, the users listed by ``GET /_emulator/users``; and
RongCloud's own Dify plugin's ``register_user`` against ``provisioner emulator serve``, its
request reproduced exactly (rongcloud-plugins-dify, ``utils/rongcloud.py`` ``_make_request``
and ``tools/user/register_user.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisioner.emulator import EmulatorServer
from tests.test_cli_emulator import run_serve
from tests.test_emulator import APP_KEY, APP_SECRET, DifyPluginSigner, assert_error, signed_headers

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}) as server:
        yield server


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


def get_token(http: httpx.Client, form: dict[str, str]) -> httpx.Response:
    return http.post("/user/getToken.json", data=form, headers={**signed_headers(), **FORM})


def plugin_register_user(
    base_url: str, app_key: str, app_secret: str, parameters: dict[str, str]
) -> dict[str, Any]:
    """The plugin's ``register_user``: ``POST {host}/user/getToken.json`` with ``data=`` (a
    form), its headers (App-Key, Nonce = the current second, a millisecond Timestamp,
    Signature, ``User-Agent: rc-dify-tool/…``, ``Content-Type:
    application/x-www-form-urlencoded``); it raises unless the answer is JSON."""
    signer = DifyPluginSigner(time.time, app_key)
    headers = {**signer.headers(), **FORM}
    assert app_secret == APP_SECRET  # the signer signs with the test secret
    data = {
        "userId": parameters["user_id"],
        "name": parameters["name"],
        "portraitUri": parameters["portrait_uri"],
    }
    with httpx.Client(timeout=30) as session:
        result = session.request(
            "POST", f"{base_url}/user/getToken.json", headers=headers, data=data
        )
    answer: dict[str, Any] = result.json()
    if not answer:
        raise AssertionError("request failed")
    return answer


def test_get_token_registers_a_user(http: httpx.Client, emulator: EmulatorServer) -> None:
    first = get_token(http, {"userId": "alice", "name": "Alice"})
    assert first.status_code == 200
    body = first.json()
    assert (body["code"], body["userId"]) == (200, "alice")
    again = get_token(http, {"userId": "alice", "name": "Alice L.", "portraitUri": "https://p"})
    assert again.json()["token"] != body["token"]
    users = http.get("/_emulator/users", params={"appKey": APP_KEY}).json()
    [alice] = [u for u in users["users"] if u["userId"] == "alice"]
    assert {k: alice[k] for k in ("appKey", "name", "portraitUri", "tokensIssued")} == {
        "appKey": APP_KEY,
        "name": "Alice L.",
        "portraitUri": "https://p",
        "tokensIssued": 2,
    }
    assert body["token"] not in str(users)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "x"}, "userId: is required"),
        ({"userId": "a b"}, "userId: must not contain whitespace"),
        ({"userId": "u" * 65}, "userId: must be at most 64 characters"),
        ({"userId": "u", "name": "n" * 129}, "name: must be at most 128 characters"),
    ],
)
def test_a_bad_form_is_1002(http: httpx.Client, form: dict[str, str], message: str) -> None:
    assert_error(get_token(http, form), 400, 1002, message)


def test_get_token_is_signed_like_every_call(http: httpx.Client) -> None:
    headers = {**signed_headers(app_secret="wrong"), **FORM}
    response = http.post("/user/getToken.json", data={"userId": "x"}, headers=headers)
    assert response.status_code == 401 and response.json()["code"] == 1004


def test_the_dify_plugins_register_user_works_against_emulator_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def call(server: EmulatorServer) -> list[Any]:
        answer = plugin_register_user(
            server.url,
            APP_KEY,
            APP_SECRET,
            {"user_id": "plugin-user", "name": "插件用户", "portrait_uri": "https://e.com/p.png"},
        )
        listed = httpx.get(f"{server.url}/_emulator/users").json()["users"]
        return [answer["code"], answer["userId"], [u["name"] for u in listed]]

    args = ["--port", "0", "--app-key", APP_KEY]
    monkeypatch.setenv("PROVISIONER_EMULATOR_APP_SECRET", APP_SECRET)
    assert run_serve(monkeypatch, args, call) == (0, [[200, "plugin-user", ["插件用户"]]])
