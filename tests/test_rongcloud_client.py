"""RongCloudClient against a stateful fake over httpx.MockTransport: envelopes, errors,
batching, paging, retries, failover, and writes that are never blindly repeated."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from provisioner.errors import (
    AmbiguousWriteError,
    ApiError,
    ConfigError,
    RateLimitedError,
    TransportError,
)
from provisioner.rongcloud import BotPayload, IntegrationPayload, RongCloudClient
from provisioner.rongcloud.client import CREATE, DELETE, GET, QUERY, UPDATE
from provisioner.rongcloud.responses import MAX_ANSWER_BYTES
from tests.rongcloud_fake import FakeBotApi, Fault

PRIMARY = "https://primary.example.com"
BACKUP = "https://backup.example.com"

MakeClient = Callable[..., RongCloudClient]


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi(app_key=f"key-{uuid.uuid4().hex[:8]}", app_secret="secret1")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(fake: FakeBotApi, sleeps: list[float]) -> MakeClient:
    clients: list[RongCloudClient] = []

    def make(**overrides: object) -> RongCloudClient:
        options: dict[str, object] = {
            "app_key": fake.app_key,
            "app_secret": fake.app_secret,
            "hosts": [PRIMARY, BACKUP],
            "rate_limit": 100,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "transport": fake.transport(),
            "sleep": sleeps.append,
        }
        options.update(overrides)
        client = RongCloudClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make  # type: ignore[misc]
    for client in clients:
        client.close()


def bot(user_id: str, name: str = "Bot") -> BotPayload:
    return BotPayload(
        userId=user_id,
        name=name,
        type="Message AI",
        profileUrl="https://example.com/p.png",
        integrations=[
            IntegrationPayload(type="webhook", callbackUrl="https://hooks.example.com/x")
        ],
    )


# -- the happy paths ---------------------------------------------------------------------------


def test_each_request_carries_the_client_headers_and_its_own_signature(
    make_client: MakeClient, fake: FakeBotApi
) -> None:
    seen: list[httpx.Request] = []
    inner = fake.transport()

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return inner.handle_request(request)

    client = make_client(transport=httpx.MockTransport(spy), timeout=7.0)
    client.create_bot(bot("a"))
    client.create_bot(bot("b"))
    first, second = seen
    assert str(first.url) == f"{PRIMARY}{CREATE}"
    assert first.headers["User-Agent"].startswith("provisioner/")
    assert first.headers["Content-Type"] == "application/json"
    assert first.extensions["timeout"] == httpx.Timeout(7.0).as_dict()
    for name in ("App-Key", "Nonce", "Timestamp", "Signature", "X-Request-ID"):
        assert name in first.headers and name in second.headers
    assert first.headers["Nonce"] != second.headers["Nonce"]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_create_get_update_delete_round_trip(fake: FakeBotApi, make_client: MakeClient) -> None:
    client = make_client()
    client.create_bot(bot("b1"))
    assert [b.userId for b in client.get_bots(["b1"])] == ["b1"]
    client.update_bot(bot("b1", name="Renamed"))
    assert client.get_bots(["b1"])[0].name == "Renamed"
    client.delete_bot("b1")
    assert client.get_bots(["b1"]) == []
    assert [seen.path for seen in fake.requests] == [CREATE, GET, UPDATE, GET, DELETE, GET]


def test_write_body_is_the_full_object_without_server_timestamps(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    stamped = bot("b1").model_copy(update={"createdAt": 1, "updatedAt": 2})
    make_client().create_bot(stamped)
    assert fake.requests[0].body == {
        "userId": "b1",
        "name": "Bot",
        "type": "Message AI",
        "profileUrl": "https://example.com/p.png",
        "integrations": [{"type": "webhook", "callbackUrl": "https://hooks.example.com/x"}],
    }


def test_get_batches_by_twenty_and_unknown_ids_are_absent(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    for n in range(0, 45, 2):
        fake.bots[f"b{n:02}"] = bot(f"b{n:02}").wire()
    wanted = [f"b{n:02}" for n in range(45)]
    found = make_client().get_bots([*wanted, "b00"])  # duplicates are asked once
    assert [b.userId for b in found] == [f"b{n:02}" for n in range(0, 45, 2)]
    assert [len(seen.body["userIds"]) for seen in fake.requests] == [20, 20, 5]


def test_get_of_nothing_makes_no_call(fake: FakeBotApi, make_client: MakeClient) -> None:
    assert make_client().get_bots([]) == []
    assert fake.requests == []


def test_query_follows_has_next(fake: FakeBotApi, make_client: MakeClient) -> None:
    for n in range(7):
        fake.bots[f"b{n}"] = bot(f"b{n}").wire()
    found = make_client().query_bots(page_size=3)
    assert [b.userId for b in found] == [f"b{n}" for n in range(7)]
    assert [seen.body for seen in fake.requests] == [
        {"page": page, "pageSize": 3, "includeIntegration": True} for page in (1, 2, 3)
    ]
    assert found[0].integrations is not None


def test_query_without_integrations(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.bots["b1"] = bot("b1").wire()
    found = make_client().query_bots(include_integrations=False)
    assert found[0].integrations is None
    assert fake.requests[0].body["includeIntegration"] is False


def test_each_attempt_is_signed_afresh(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.script(GET, Fault("status", status=429, code=1008))
    make_client().get_bots(["x"])
    first, second = fake.requests
    assert first.headers["nonce"] != second.headers["nonce"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["signature"] != second.headers["signature"]


# -- errors ------------------------------------------------------------------------------------


def test_api_error_carries_endpoint_status_code_message_and_request_id(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    fake.bots["b1"] = bot("b1").wire()
    with pytest.raises(ApiError) as caught:
        make_client().create_bot(bot("b1"))
    error = caught.value
    request_id = fake.requests[0].headers["x-request-id"]
    assert type(error) is ApiError
    assert (error.endpoint, error.http_status, error.code) == (CREATE, 400, 1010)
    assert error.error_message == "userId already exists"
    assert error.request_id == request_id
    assert error.message == (
        f"RongCloud rejected /v3/bot/create.json (HTTP 400, code 1010): userId already exists "
        f"(request id {request_id})"
    )
    assert fake.calls(CREATE) == 1


def test_code_other_than_200_in_a_200_answer_is_an_error(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    fake.script(DELETE, Fault("status", status=200, code=1002))
    with pytest.raises(ApiError) as caught:
        make_client().delete_bot("b1")
    assert (caught.value.http_status, caught.value.code) == (200, 1002)


def test_wrong_secret_is_a_signature_error_with_a_hint(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    with pytest.raises(ApiError) as caught:
        make_client(app_secret="not-the-secret").query_bots()
    assert (caught.value.http_status, caught.value.code) == (401, 1004)
    assert caught.value.hint == (
        "check the app key and secret, and that this machine's clock is in sync (NTP)"
    )
    assert fake.calls(QUERY) == 1  # not retried


def test_answer_that_is_not_json(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="<html>forbidden</html>")

    with pytest.raises(ApiError) as caught:
        make_client(transport=httpx.MockTransport(handler)).query_bots()
    assert (caught.value.http_status, caught.value.code) == (403, None)
    assert caught.value.message.startswith("RongCloud rejected /v3/bot/query.json (HTTP 403) (")


def test_success_with_an_unexpected_shape(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 200, "bots": [{"name": "no id"}]})

    with pytest.raises(ApiError, match="answered success with a body of unexpected shape"):
        make_client(transport=httpx.MockTransport(handler)).get_bots(["x"])


# -- writes are never blindly repeated ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["timeout", "drop"])
def test_write_without_an_answer_is_ambiguous_and_not_repeated(
    fake: FakeBotApi, make_client: MakeClient, kind: str
) -> None:
    fake.script(CREATE, Fault(kind))
    with pytest.raises(AmbiguousWriteError) as caught:
        make_client().create_bot(bot("b1"))
    assert fake.calls(CREATE) == 1
    assert fake.commits == 1  # it did take effect; the apply layer finds out by reading back
    assert caught.value.endpoint == CREATE
    assert caught.value.hint == "read the bot back to find out, then run apply again"


def test_write_answered_5xx_is_ambiguous_and_fails_over_for_later_calls(
    fake: FakeBotApi, make_client: MakeClient
) -> None:
    fake.script(UPDATE, Fault("status", status=503))
    client = make_client()
    with pytest.raises(AmbiguousWriteError, match="answered HTTP 503"):
        client.update_bot(bot("b1"))
    assert fake.calls(UPDATE) == 1
    client.get_bots(["b1"])
    assert fake.requests[-1].host == BACKUP


def test_write_refused_at_connect_fails_over_and_is_sent_once(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.dead_hosts.add(PRIMARY)
    make_client().create_bot(bot("b1"))
    assert [seen.host for seen in fake.requests] == [PRIMARY, BACKUP]
    assert fake.commits == 1
    assert sleeps == [0.0]  # a host not yet tried is tried at once


def test_write_refused_everywhere_is_a_transport_error_not_ambiguous(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.dead_hosts.update({PRIMARY, BACKUP})
    with pytest.raises(TransportError) as caught:
        make_client(max_attempts=4).delete_bot("b1")
    assert type(caught.value) is TransportError
    assert [seen.host for seen in fake.requests] == [PRIMARY, BACKUP, PRIMARY, BACKUP]
    assert sleeps[0] == 0.0 and all(wait > 0 for wait in sleeps[1:])
    assert caught.value.message.startswith(f"could not connect to {BACKUP} for /v3/bot/delete.json")


def test_rate_limited_write_backs_off_honouring_retry_after(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.script(CREATE, *[Fault("status", status=429, code=1008, headers={"Retry-After": "2"})] * 2)
    make_client().create_bot(bot("b1"))
    assert fake.calls(CREATE) == 3
    assert fake.commits == 1
    assert sleeps == [2.0, 2.0]


def test_retry_after_as_http_date(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 3, tzinfo=UTC), usegmt=True)
    fake.script(GET, Fault("status", status=429, code=1008, headers={"Retry-After": later}))
    make_client(clock=now.timestamp).get_bots(["b1"])
    assert sleeps == [3.0]


def test_huge_retry_after_is_capped(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.script(GET, Fault("status", status=429, code=1008, headers={"Retry-After": "3600"}))
    make_client().get_bots(["b1"])
    assert sleeps == [60.0]


def test_code_1008_in_a_200_answer_is_rate_limiting(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.script(GET, Fault("status", status=200, code=1008))
    make_client().get_bots(["b1"])
    assert fake.calls(GET) == 2
    assert len(sleeps) == 1 and 0.01 <= sleeps[0] <= 0.05


def test_rate_limited_to_the_end(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.script(QUERY, *[Fault("status", status=429, code=1008)] * 5)
    with pytest.raises(RateLimitedError) as caught:
        make_client(max_attempts=5).query_bots()
    assert fake.calls(QUERY) == 5
    assert (caught.value.http_status, caught.value.code) == (429, 1008)


# -- reads retry -------------------------------------------------------------------------------


def test_read_retries_5xx_failing_over(
    fake: FakeBotApi, make_client: MakeClient, sleeps: list[float]
) -> None:
    fake.bots["b1"] = bot("b1").wire()
    fake.script(GET, Fault("status", status=502), Fault("status", status=503))
    assert [b.userId for b in make_client().get_bots(["b1"])] == ["b1"]
    assert [seen.host for seen in fake.requests] == [PRIMARY, BACKUP, PRIMARY]
    assert sleeps[0] == 0.0 and sleeps[1] > 0


@pytest.mark.parametrize("kind", ["timeout", "drop", "refuse"])
def test_read_retries_transport_failures(
    fake: FakeBotApi, make_client: MakeClient, kind: str
) -> None:
    fake.script(QUERY, Fault(kind))
    assert make_client().query_bots() == []
    assert fake.calls(QUERY) == 2


def test_read_gives_up_after_max_attempts(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.script(QUERY, *[Fault("timeout")] * 3)
    with pytest.raises(TransportError) as caught:
        make_client(max_attempts=3).query_bots()
    assert type(caught.value) is TransportError
    assert fake.calls(QUERY) == 3


def test_read_5xx_to_the_end_is_an_api_error(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.script(GET, *[Fault("status", status=500)] * 2)
    with pytest.raises(ApiError) as caught:
        make_client(max_attempts=2).get_bots(["b1"])
    assert (caught.value.http_status, caught.value.code) == (500, 1000)


def test_client_errors_are_not_retried(fake: FakeBotApi, make_client: MakeClient) -> None:
    fake.script(GET, Fault("status", status=400, code=1002))
    with pytest.raises(ApiError):
        make_client().get_bots(["b1"])
    assert fake.calls(GET) == 1


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"hosts": ["http://api.example.com"]},
            "endpoint URL 'http://api.example.com' uses plain http",
        ),
        ({"hosts": []}, "no RongCloud host configured"),
        ({"rate_limit": 101}, "rate limit 101 calls/s is out of range"),
        ({"rate_limit": 0}, "rate limit 0 calls/s is out of range"),
        ({"app_secret": ""}, "the app secret is empty"),
        ({"max_attempts": 0}, "max_attempts must be at least 1, not 0"),
    ],
)
def test_bad_configuration(
    make_client: MakeClient, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_client(**overrides)
    assert caught.value.message == message


def test_repr_names_key_and_hosts_only(make_client: MakeClient, fake: FakeBotApi) -> None:
    assert repr(make_client()) == (
        f"RongCloudClient(app_key={fake.app_key!r}, hosts=[{PRIMARY!r}, {BACKUP!r}])"
    )


def test_server_messages_are_redacted_but_not_shredded(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # Compact, whatever separators this httpx version sends the body with.
        body = json.dumps(json.loads(request.content), separators=(",", ":"))
        return httpx.Response(400, json={"code": 1002, "errorMessage": f"bad secret s: {body}"})

    tiny = make_client(app_secret="s", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        tiny.delete_bot("userid-secret1")
    assert caught.value.error_message == 'bad secret s: {"userId":"userid-secret1"}'
    full = make_client(app_secret="secret1", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        full.delete_bot("userid-secret1")
    assert caught.value.error_message == 'bad secret s: {"userId":"userid-(sensitive)"}'


def test_debug_line_per_attempt(
    fake: FakeBotApi, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="provisioner.rongcloud")
    fake.script(GET, Fault("refuse"))
    make_client().get_bots(["b1"])
    first, second = (seen.headers["x-request-id"] for seen in fake.requests)
    lines = [r.getMessage() for r in caplog.records if r.name == "provisioner.rongcloud"]
    assert lines == [
        f"{GET} {PRIMARY} attempt 1: no answer (ConnectError), request id {first}",
        f"{GET} {BACKUP} attempt 2: HTTP 200 code 200 request id {second}",
    ]


def test_undecodable_answer_to_a_write_is_ambiguous(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    with pytest.raises(AmbiguousWriteError, match=r"got no answer \(DecodingError"):
        make_client(transport=httpx.MockTransport(handler)).create_bot(bot("b1"))


# -- bounded, clean reads ----------------------------------------------------------------------

CHUNK = 64 * 1024


class EndlessBody:
    """A response body of ``total`` bytes in 64 KiB chunks that counts the chunks pulled."""

    def __init__(self, total: int = 256 * 1024 * 1024, prefix: bytes = b'{"code":200,"pad":"'):
        self.total = total
        self.prefix = prefix
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.prefix
        for _ in range(self.total // CHUNK):
            self.pulled += 1
            yield b"x" * CHUNK


def answering(response: Callable[[], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: response())


MOST_CHUNKS_PER_ATTEMPT = MAX_ANSWER_BYTES // CHUNK + 1


def test_oversized_answer_to_a_read_is_a_transport_error_and_never_read_whole(
    make_client: MakeClient,
) -> None:
    bodies: list[EndlessBody] = []

    def endless() -> httpx.Response:
        bodies.append(EndlessBody())
        return httpx.Response(200, content=bodies[-1])

    client = make_client(transport=answering(endless), max_attempts=2)
    with pytest.raises(TransportError) as caught:
        client.query_bots()
    assert type(caught.value) is TransportError
    assert caught.value.message == (
        f"{QUERY} to {BACKUP} answered HTTP 200 with a body over 4 MiB (not read past that)"
    )
    assert caught.value.hint == (
        "RongCloud's answers are a few KiB: check that `endpoint` in app.yaml points at "
        "RongCloud, not at a proxy or another service"
    )
    assert len(bodies) == 2  # a read is retried (on the other host)
    assert all(body.pulled <= MOST_CHUNKS_PER_ATTEMPT for body in bodies)


def test_oversized_answer_to_a_write_is_ambiguous(make_client: MakeClient) -> None:
    body = EndlessBody()
    client = make_client(transport=answering(lambda: httpx.Response(200, content=body)))
    with pytest.raises(AmbiguousWriteError) as caught:
        client.create_bot(bot("b1"))
    assert caught.value.message.startswith(
        f"{CREATE} to {PRIMARY} answered HTTP 200 with a body over 4 MiB (not read past that); "
        "it may or may not have taken effect (request id "
    )
    assert caught.value.hint == "read the bot back to find out, then run apply again"
    assert body.pulled <= MOST_CHUNKS_PER_ATTEMPT


def test_declared_oversized_answer_is_not_read_at_all(make_client: MakeClient) -> None:
    body = EndlessBody()
    declared = {"Content-Length": str(200 * 1024 * 1024)}
    transport = answering(lambda: httpx.Response(200, headers=declared, content=body))
    with pytest.raises(TransportError, match="with a body over 4 MiB"):
        make_client(transport=transport, max_attempts=1).get_bots(["b1"])
    assert body.pulled == 0


def test_answer_that_inflates_past_the_cap_is_oversized(make_client: MakeClient) -> None:
    inflated = b'{"code":200,"pad":"' + b"x" * (MAX_ANSWER_BYTES + 1) + b'"}'
    packed = gzip.compress(inflated)
    assert len(packed) < MAX_ANSWER_BYTES // 100
    transport = answering(
        lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=packed)
    )
    with pytest.raises(TransportError, match="with a body over 4 MiB"):
        make_client(transport=transport, max_attempts=1).query_bots()


def test_answer_of_exactly_the_cap_is_read(make_client: MakeClient) -> None:
    head, tail = b'{"code":200,"bots":[],"pad":"', b'"}'
    content = head + b"x" * (MAX_ANSWER_BYTES - len(head) - len(tail)) + tail
    assert len(content) == MAX_ANSWER_BYTES
    transport = answering(lambda: httpx.Response(200, content=content))
    assert make_client(transport=transport).get_bots(["b1"]) == []


class EndlessServer:
    """A loopback HTTP server that answers one request with HTTP 200 and a chunked body that
    never ends, counting the bytes it got out before the client hung up."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection, self.listener:
            received = b""
            while b"\r\n\r\n" not in received:
                data = connection.recv(65536)
                if not data:
                    return  # the client hung up before its request was complete
                received += data
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b'13\r\n{"code":200,"pad":"\r\n'
            )
            chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
            with contextlib.suppress(OSError):  # the client hung up
                while self.sent < 1024 * 1024 * 1024:
                    connection.sendall(chunk)
                    self.sent += CHUNK


def test_endless_answer_from_a_real_socket_is_cut_off(sleeps: list[float]) -> None:
    server = EndlessServer()
    with (
        RongCloudClient(
            app_key=f"key-{uuid.uuid4().hex[:8]}",
            app_secret="secret1",
            hosts=[server.url],
            max_attempts=1,
            sleep=sleeps.append,
        ) as client,
        pytest.raises(TransportError, match="with a body over 4 MiB"),
    ):
        client.query_bots()
    server.thread.join(30)
    assert not server.thread.is_alive()
    # The client stopped reading at 4 MiB and hung up; the rest of what got out sat in the
    # kernel's socket buffers (a few MiB), far from the 1 GiB the server had to give.
    assert server.sent < 64 * 1024 * 1024


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"code": 200, "bots": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_deeply_nested_answer_is_a_clean_api_error(make_client: MakeClient, content: bytes) -> None:
    transport = answering(lambda: httpx.Response(200, content=content))
    with pytest.raises(ApiError) as caught:
        make_client(transport=transport).get_bots(["b1"])
    error = caught.value
    assert (error.http_status, error.code) == (200, None)
    assert re.fullmatch(
        r"RongCloud's answer to /v3/bot/get\.json \(HTTP 200\) is unusable: its JSON is nested "
        r"too deeply to decode \(request id [0-9a-f]{32}\)",
        error.message,
    )
    assert error.hint == (
        "RongCloud's answers are flat JSON: check that `endpoint` in app.yaml points at "
        "RongCloud (not at a proxy or another service); if it does, report this with the "
        "request id"
    )


UNSENDABLE = [
    ("canary-newline\n", "a line break (CR or LF)"),
    ("canary\rcr", "a line break (CR or LF)"),
    ("canäry-non-ascii", "a non-ASCII character"),
    ("canary-\x00-nul", "a control character"),
    ("canary\ttab", "a control character"),
    ("canary-\x7f-del", "a control character"),
    (
        "canary-\udcff-surrogate",
        "a byte that is not valid UTF-8 (is the environment's locale UTF-8?)",
    ),
]


@pytest.mark.parametrize(("value", "problem"), UNSENDABLE)
def test_unsendable_app_key_is_a_config_error_that_never_shows_it(
    make_client: MakeClient, fake: FakeBotApi, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_client(app_key=value)
    assert caught.value.message == f"the app key contains {problem}"
    assert caught.value.hint == (
        "set appKey in app.yaml (or the variable it references) to the value from the RongCloud "
        "console: printable ASCII only (a value read from a file may end in a newline)"
    )
    assert "can" not in caught.value.message + str(caught.value.hint)  # no part of the value
    assert fake.requests == []


@pytest.mark.parametrize(("value", "problem"), UNSENDABLE)
def test_unsendable_app_secret_is_a_config_error_that_never_shows_it(
    make_client: MakeClient, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_client(app_secret=value)
    assert caught.value.message == f"the app secret contains {problem}"
    assert caught.value.hint == (
        "set the variable appSecret references in app.yaml to the value from the RongCloud "
        "console: printable ASCII only (a value read from a file may end in a newline)"
    )
    assert "can" not in caught.value.message + str(caught.value.hint)  # no part of the value


def test_printable_ascii_credentials_with_punctuation_are_fine(make_client: MakeClient) -> None:
    make_client(app_key="key.with-punctuation_~", app_secret="s3cret!@# $%")


# --- call(): any API path (provisioner api) -------------------------------------------------


def test_call_sends_a_form_body_and_takes_the_v2_success_code(make_client: MakeClient) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 10000, "msg": "ok"})

    client = make_client(transport=httpx.MockTransport(handler))
    body = {"fromUserId": "u1", "toUserId": ["a", "b"], "content": '{"content":"你好"}'}
    assert client.call("/message/private/publish.json", body, form=True) == {
        "code": 10000,
        "msg": "ok",
    }
    (request,) = seen
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.content.decode() == (
        "fromUserId=u1&toUserId=a&toUserId=b&content=%7B%22content%22%3A%22%E4%BD%A0%E5%A5%BD%22%7D"
    )
    assert "Signature" in request.headers


def test_call_repeats_only_reads_after_a_5xx(make_client: MakeClient) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503, json={"code": 1000})

    client = make_client(transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError):
        client.call(QUERY, {}, read=True)
    assert seen[:2] == [f"{PRIMARY}{QUERY}", f"{BACKUP}{QUERY}"]
    assert len(seen) == 5  # every attempt, failing over
    seen.clear()
    with pytest.raises(AmbiguousWriteError) as caught:
        client.call("/user/getToken.json", {"userId": "u1"}, form=True)
    assert len(seen) == 1
    assert caught.value.message.startswith("/user/getToken.json to http")
