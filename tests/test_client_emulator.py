"""RongCloudClient against the emulator over real loopback HTTP (uvicorn on 127.0.0.1:0).

Every endpoint and limit, signature failures, failover from a dead port, retries through
injected 5xx and 429s, ambiguous writes, and a 300-call burst whose rate the emulator measures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.errors import AmbiguousWriteError, ApiError, TransportError
from provisioner.rongcloud import AuthPayload, BotPayload, IntegrationPayload, RongCloudClient
from provisioner.rongcloud.client import CREATE, GET, QUERY
from provisioner.rongcloud.signing import RongCloudAuth

SECRET = "emulator-secret-1"
MakeClient = Callable[..., RongCloudClient]


@pytest.fixture
def app_key() -> str:
    # A key of its own per test: the client's rate limiter is process-wide per app key.
    return f"key-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def server(app_key: str) -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={app_key: SECRET}) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(server: EmulatorServer, app_key: str, sleeps: list[float]) -> Iterator[MakeClient]:
    clients: list[RongCloudClient] = []

    def make(**overrides: object) -> RongCloudClient:
        options: dict[str, object] = {
            "app_key": app_key,
            "app_secret": SECRET,
            "hosts": [server.url],
            "rate_limit": 100,
            "timeout": 5.0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "sleep": sleeps.append,
        }
        options.update(overrides)
        client = RongCloudClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def bot(user_id: str, *, name: str = "消息助手", api_key: str = "app-dify-key") -> BotPayload:
    return BotPayload(
        userId=user_id,
        name=name,
        type="Message AI",
        profileUrl="https://example.com/robot.png",
        metadata={"version": "1"},
        integrations=[
            IntegrationPayload(
                type="webhook",
                callbackUrl="https://hooks.example.com/rongcloud",
                objectNames=["RC:TxtMsg"],
                events=["message:private"],
            ),
            IntegrationPayload(
                type="dify_chatflow",
                callbackUrl="https://api.dify.ai/v1",
                stream=True,
                auth=AuthPayload(apiKey=api_key),
            ),
        ],
    )


def free_dead_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stat(server: EmulatorServer, app_key: str, kind: str, path: str) -> int:
    return int(server.stats()[kind].get(f"{app_key} {path}", 0))


# -- every endpoint ----------------------------------------------------------------------------


def test_every_endpoint_round_trip(make_client: MakeClient) -> None:
    client = make_client()
    client.create_bot(bot("assistant"))
    (found,) = client.get_bots(["assistant", "unknown"])
    assert found.name == "消息助手"
    assert found.metadata == {"version": "1"}
    dify = next(i for i in found.integrations or [] if i.type == "dify_chatflow")
    assert dify.auth is not None and dify.auth.apiKey == "app-dify-key"
    assert dify.handleResponse is True  # the API default, filled in by the server

    client.update_bot(bot("assistant", name="Renamed").model_copy(update={"metadata": None}))
    (updated,) = client.get_bots(["assistant"])
    assert (updated.name, updated.metadata) == ("Renamed", None)  # update is a full replace

    client.delete_bot("assistant")
    assert client.get_bots(["assistant"]) == []


def test_query_pages_with_has_next(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    client = make_client()
    for n in range(7):
        client.create_bot(bot(f"bot-{n}"))
    found = client.query_bots(page_size=3)
    assert sorted(b.userId for b in found) == [f"bot-{n}" for n in range(7)]
    assert stat(server, app_key, "calls", QUERY) == 3
    bare = client.query_bots(include_integrations=False)
    assert all(b.integrations is None for b in bare)


def test_get_of_more_than_twenty_ids_is_batched(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    client = make_client()
    client.create_bot(bot("bot-3"))
    found = client.get_bots([f"bot-{n}" for n in range(45)])
    assert [b.userId for b in found] == ["bot-3"]
    assert stat(server, app_key, "calls", GET) == 3


def test_masked_api_keys_pass_through(app_key: str) -> None:
    with (
        EmulatorServer(apps={app_key: SECRET}, mask_api_keys=True) as masked,
        RongCloudClient(app_key=app_key, app_secret=SECRET, hosts=[masked.url]) as client,
    ):
        client.create_bot(bot("b1"))
        (found,) = client.get_bots(["b1"])
    keys = [i.auth.apiKey for i in found.integrations or [] if i.auth is not None]
    assert keys == ["******"]


# -- every limit -------------------------------------------------------------------------------


def test_limits_are_typed_api_errors(make_client: MakeClient) -> None:
    client = make_client()
    for n in range(10):
        client.create_bot(bot(f"bot-{n}"))
    cases: list[tuple[Callable[[], object], int, int, str]] = [
        (
            lambda: client.create_bot(bot("bot-10")),
            400,
            1502,
            "bot quota reached: an app can have at most 10 bots",
        ),
        (lambda: client.create_bot(bot("bot-1")), 400, 1010, "userId: bot bot-1 already exists"),
        (lambda: client.update_bot(bot("nobody")), 404, 1404, "userId: bot nobody not found"),
        (lambda: client.delete_bot("nobody"), 404, 1404, "userId: bot nobody not found"),
        (
            lambda: client.update_bot(bot("bot-1", name="x" * 129)),
            400,
            1002,
            "name: must be 1-128 characters, got 129",
        ),
        (
            lambda: client.update_bot(
                bot("bot-1").model_copy(update={"metadata": {f"k{n}": "v" for n in range(17)}})
            ),
            400,
            1002,
            "metadata: at most 16 pairs, got 17",
        ),
        (
            lambda: client.query_bots(page_size=101),
            400,
            1002,
            "pageSize: must be between 1 and 100, got 101",
        ),
        (
            lambda: client._call(GET, {"userIds": [f"b{n}" for n in range(21)]}),
            400,
            1502,
            "userIds: at most 20 ids per call, got 21",
        ),
    ]
    for call, status, code, message in cases:
        with pytest.raises(ApiError) as caught:
            call()
        error = caught.value
        assert (error.http_status, error.code, error.error_message) == (status, code, message)
        assert error.request_id and error.endpoint.startswith("/v3/bot/")


def test_random_undocumented_codes_are_plain_api_errors(
    make_client: MakeClient, server: EmulatorServer
) -> None:
    client = make_client()
    client.create_bot(bot("b1"))
    server.set_faults(random_undocumented_codes=True, seed=9)
    calls: list[Callable[[], object]] = [
        lambda: client.create_bot(bot("b1")),
        lambda: client.update_bot(bot("nobody")),
        lambda: client.delete_bot("nobody"),
    ]
    for call in calls:
        with pytest.raises(ApiError) as caught:
            call()
        error = caught.value
        assert type(error) is ApiError  # final: neither retried nor ambiguous
        assert error.http_status == 400
        assert error.code not in (200, 1002, 1004, 1008, 1010, 1404, 1502)
        assert error.hint is None
    assert server.stats()["faults"]["random_codes"] == 3


# -- signatures --------------------------------------------------------------------------------


def signed_post(
    server: EmulatorServer, auth: httpx.Auth | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    with httpx.Client(auth=auth, timeout=5.0) as http:
        return http.post(server.url + QUERY, json={"page": 1, "pageSize": 10}, headers=headers)


def test_wrong_secret(make_client: MakeClient) -> None:
    with pytest.raises(ApiError) as caught:
        make_client(app_secret="not-the-secret").query_bots()
    assert (caught.value.http_status, caught.value.code) == (401, 1004)
    assert caught.value.error_message == "Signature: does not match"


def test_unknown_app_key_has_a_hint_about_the_key_and_the_data_center(
    make_client: MakeClient,
) -> None:
    with pytest.raises(ApiError) as caught:
        make_client(app_key=f"unknown-{uuid.uuid4().hex[:8]}").query_bots()
    error = caught.value
    assert (error.http_status, error.code, error.error_message) == (
        401,
        1002,
        "Invalidate App-Key.",
    )
    assert error.hint == (
        "check appKey in app.yaml (or the variable it references), and that `endpoint` names "
        "the app's data center: an app key is known only in the data center it was created in"
    )


def test_stale_timestamp(server: EmulatorServer, app_key: str) -> None:
    stale = RongCloudAuth(app_key, SECRET, clock_ms=lambda: 1_600_000_000_000)
    answer = signed_post(server, stale)
    assert answer.status_code == 401
    assert answer.json() == {
        "code": 1004,
        "errorMessage": "Timestamp: more than 5 minutes away from the server clock",
    }


def test_replayed_nonce_passes_by_default_and_is_refused_when_strict(app_key: str) -> None:
    replaying = RongCloudAuth(app_key, SECRET, nonce_factory=lambda: "same-nonce")
    with EmulatorServer(apps={app_key: SECRET}) as lenient:
        assert [signed_post(lenient, replaying).status_code for _ in range(2)] == [200, 200]
    with EmulatorServer(apps={app_key: SECRET}, strict_signatures=True) as strict:
        assert signed_post(strict, replaying).status_code == 200
        answer = signed_post(strict, replaying)
    assert (answer.status_code, answer.json()["code"]) == (401, 1004)
    assert answer.json()["errorMessage"] == "Nonce: already used (replayed request)"


def test_client_nonces_pass_strict_signatures(app_key: str) -> None:
    with (
        EmulatorServer(apps={app_key: SECRET}, strict_signatures=True) as strict,
        RongCloudClient(app_key=app_key, app_secret=SECRET, hosts=[strict.url]) as client,
    ):
        client.create_bot(bot("b1"))
        assert [b.userId for b in client.get_bots(["b1"])] == ["b1"]


def test_missing_signature_header(server: EmulatorServer, app_key: str) -> None:
    answer = signed_post(server, None, headers={"App-Key": app_key, "Nonce": "n", "Timestamp": "1"})
    assert (answer.status_code, answer.json()["code"]) == (401, 1004)
    assert answer.json()["errorMessage"] == "missing header Signature (or RC-Signature)"


def test_sign_command_headers_work_with_the_emulator(
    server: EmulatorServer,
    app_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", SECRET)
    assert main(["sign", "--app-key", app_key]) == 0
    headers = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    answer = signed_post(server, None, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (200, 200)


def test_sign_command_in_a_subprocess_works_with_the_emulator(
    server: EmulatorServer, app_key: str
) -> None:
    env = {**os.environ, "RONGCLOUD_APP_SECRET": SECRET, "RONGCLOUD_APP_KEY": app_key}
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "sign"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    headers = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert signed_post(server, None, headers=headers).json()["code"] == 200


# -- failover and retries ----------------------------------------------------------------------


def test_dead_primary_fails_over_to_the_live_backup(
    make_client: MakeClient, server: EmulatorServer, sleeps: list[float]
) -> None:
    dead = f"http://127.0.0.1:{free_dead_port()}"
    client = make_client(hosts=[dead, server.url])
    client.create_bot(bot("b1"))  # a write: refused at connect, so safe to send to the backup
    assert [b.userId for b in client.get_bots(["b1"])] == ["b1"]
    assert sleeps == [0.0]  # only the first call had to fail over; later ones use the backup


def test_both_hosts_dead_is_a_transport_error(make_client: MakeClient) -> None:
    dead = [f"http://127.0.0.1:{free_dead_port()}" for _ in range(2)]
    with pytest.raises(TransportError) as caught:
        make_client(hosts=dead, max_attempts=3).create_bot(bot("b1"))
    assert type(caught.value) is TransportError  # nothing was sent: not ambiguous


def test_reads_retry_through_injected_5xx(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    client = make_client(max_attempts=10)
    client.create_bot(bot("b1"))
    server.set_faults(error_rate=0.5, seed=7)
    for _ in range(10):
        assert [b.userId for b in client.get_bots(["b1"])] == ["b1"]
        assert len(client.query_bots()) == 1
    assert server.stats()["faults"]["errors"] > 0


def test_write_answered_5xx_is_ambiguous_and_sent_once(
    make_client: MakeClient, server: EmulatorServer
) -> None:
    server.set_faults(error_rate=1.0, seed=1)
    with pytest.raises(AmbiguousWriteError, match="answered HTTP 500"):
        make_client().create_bot(bot("b1"))
    assert server.stats()["faults"]["errors"] == 1


def test_429_burst_is_retried_honouring_retry_after(
    make_client: MakeClient, server: EmulatorServer, app_key: str, sleeps: list[float]
) -> None:
    server.set_faults(burst_429=3)
    make_client().create_bot(bot("b1"))
    assert sleeps == [1.0, 1.0, 1.0]  # the emulator sends Retry-After: 1
    assert server.stats()["faults"]["bursts"] == 3
    assert stat(server, app_key, "calls", CREATE) == 1


def test_drop_after_commit_is_ambiguous_and_reading_back_finds_the_bot(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    client = make_client()
    server.set_faults(drop_after_commit=1.0, seed=1)
    with pytest.raises(AmbiguousWriteError) as caught:
        client.create_bot(bot("b1"))
    assert caught.value.message.startswith(f"{CREATE} to {server.url} got no answer")
    assert stat(server, app_key, "calls", CREATE) == 1
    server.set_faults(drop_after_commit=0.0)
    assert [b.userId for b in client.get_bots(["b1"])] == ["b1"]


def test_read_timeout_is_retried_for_reads_and_ambiguous_for_writes(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    server.set_faults(latency_ms=400)
    client = make_client(timeout=0.1, max_attempts=2)
    with pytest.raises(TransportError) as read_failure:
        client.query_bots()
    assert type(read_failure.value) is TransportError
    with pytest.raises(AmbiguousWriteError):
        client.delete_bot("b1")


# -- the rate limit ----------------------------------------------------------------------------


def test_burst_of_300_calls_stays_under_the_configured_rate(
    make_client: MakeClient, server: EmulatorServer, app_key: str
) -> None:
    rate = 80  # below the emulator's own 100/s, so the emulator would not hide an overshoot
    client = make_client(rate_limit=rate)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: client.get_bots(["nobody"]), range(300)))
    assert results == [[]] * 300
    stats = server.stats()
    key = f"{app_key} {GET}"
    assert stats["calls"][key] == 300
    assert stats["rate_limited"].get(key, 0) == 0
    assert 0 < stats["max_per_second"][key] <= rate
