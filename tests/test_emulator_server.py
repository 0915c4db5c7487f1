"""EmulatorServer's lifecycle and persistence, and the emulator's building blocks in isolation."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import provisioner.emulator
from provisioner.emulator import EmulatorServer, FaultConfig
from provisioner.emulator.admission.ratelimit import SlidingWindowLimiter
from provisioner.emulator.admission.signature import (
    NonceRegistry,
    SignatureVerifier,
    sign,
    timestamp_seconds,
)
from provisioner.emulator.app import EmulatorState, build_app
from provisioner.emulator.codes import DOCUMENTED_CODES, INVENTED_CODES, RANDOM_CODES
from provisioner.emulator.faults import FaultInjector, draw_undocumented_code
from provisioner.emulator.store import BotStore
from provisioner.errors import ConfigError, EmulatorError
from tests.test_emulator import APP_KEY, APP_SECRET, Api, bot, signed_headers


def emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "provisioner-emulator"]


@pytest.fixture(autouse=True)
def no_emulator_thread_left() -> Iterator[None]:
    """Every test here must stop what it started."""
    yield
    assert [t for t in threading.enumerate() if t.name == "provisioner-emulator"] == []


# lifecycle ----------------------------------------------------------------------------------


def test_start_and_stop_leave_no_thread_and_no_temp_database() -> None:
    server = EmulatorServer()
    assert server.url == ""
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port == int(server.url.rsplit(":", 1)[1]) > 0
        temp_db = server._temp_db
        assert temp_db is not None and temp_db.exists()
        with httpx.Client() as client:
            assert client.get(f"{server.url}/_emulator/stats").status_code == 200
    finally:
        server.stop()
    assert emulator_threads() == []
    assert not temp_db.exists()
    assert server.url == ""
    server.stop()  # idempotent


def test_ipv6_loopback_url_has_brackets() -> None:
    try:
        server = EmulatorServer(host="::1").start()
    except EmulatorError:  # pragma: no cover - machines without IPv6 loopback
        pytest.skip("no IPv6 loopback here")
    try:
        assert re.fullmatch(r"http://\[::1\]:\d+", server.url)
        with httpx.Client() as client:
            assert client.get(f"{server.url}/_emulator/stats").status_code == 200
    finally:
        server.stop()


def test_generated_app_is_usable() -> None:
    with EmulatorServer() as server, httpx.Client(base_url=server.url) as client:
        [(key, secret)] = server.apps.items()
        assert key.startswith("emu-")
        assert Api(client, key, secret).ok("query", {})["total"] == 0


def test_starting_twice_is_an_error() -> None:
    with EmulatorServer() as server:
        with pytest.raises(EmulatorError) as caught:
            server.start()
        assert caught.value.message == "the emulator is already running"


def test_busy_port_is_an_emulator_error() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = EmulatorServer(port=port)
        with pytest.raises(EmulatorError) as caught:
            server.start()
    assert caught.value.message == f"cannot listen on 127.0.0.1:{port}: Address already in use"
    assert caught.value.hint == "choose another port, or 0 for a free one"
    assert emulator_threads() == []


def test_unresolvable_host_is_an_emulator_error() -> None:
    host = "x" * 64  # a label too long to encode: fails before any lookup
    with pytest.raises(EmulatorError) as caught:
        EmulatorServer(host=host).start()
    assert caught.value.message == f"cannot resolve emulator host {host!r}"


def test_server_can_be_restarted_on_a_new_port(tmp_path: Path) -> None:
    server = EmulatorServer(apps={APP_KEY: APP_SECRET}, db_path=tmp_path / "bots.sqlite3")
    for _ in range(2):
        with server, httpx.Client(base_url=server.url) as client:
            assert Api(client).ok("query", {})["code"] == 200
    assert emulator_threads() == []


@pytest.mark.parametrize("rate_limit", [0, -1, 1.5, True])
def test_rate_limit_must_be_a_positive_whole_number(rate_limit: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        EmulatorServer(rate_limit=rate_limit)
    assert caught.value.message == (
        f"emulator rate limit must be a whole number of at least 1, got {rate_limit!r}"
    )


def test_empty_apps_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        EmulatorServer(apps={})
    assert caught.value.message == "emulator needs at least one app"


# persistence --------------------------------------------------------------------------------


def test_db_path_keeps_bots_and_apps_between_runs(tmp_path: Path) -> None:
    db_path = tmp_path / "nested" / "bots.sqlite3"
    with EmulatorServer(db_path=db_path) as first, httpx.Client(base_url=first.url) as client:
        [(key, secret)] = first.apps.items()
        Api(client, key, secret).ok("create", bot())
    second = EmulatorServer(db_path=db_path)
    assert second.apps == {key: secret}
    with second, httpx.Client(base_url=second.url) as client:
        [stored] = Api(client, key, secret).get("bot-1")
        assert stored["name"] == "消息助手"
    assert db_path.exists()


def test_local_emulator_persists_secret_and_bots(tmp_path: Path) -> None:
    first = EmulatorServer.local("demo", tmp_path)
    [(key, secret)] = first.apps.items()
    assert key == "local-demo"
    assert first.db_path == tmp_path / ".provisioner" / "emulator" / "demo.sqlite3"
    with first, httpx.Client(base_url=first.url) as client:
        Api(client, key, secret).ok("create", bot())
    second = EmulatorServer.local("demo", tmp_path)
    assert second.apps == {key: secret}
    with second, httpx.Client(base_url=second.url) as client:
        assert [b["userId"] for b in Api(client, key, secret).get("bot-1")] == ["bot-1"]
    other = EmulatorServer.local("staging", tmp_path)
    assert other.apps["local-staging"] != secret


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "x" * 65])
def test_local_rejects_names_that_are_not_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EmulatorServer.local(name, tmp_path)
    assert caught.value.message == f"app name {name!r} cannot name a local emulator database"


def test_a_file_that_is_not_a_database_is_an_emulator_error(tmp_path: Path) -> None:
    db_path = tmp_path / "broken.sqlite3"
    db_path.write_bytes(b"this is not sqlite, just some text long enough" * 40)
    with pytest.raises(EmulatorError) as caught:
        EmulatorServer(apps={APP_KEY: APP_SECRET}, db_path=db_path).start()
    assert caught.value.message == (
        f"cannot use the emulator database {db_path}: file is not a database"
    )
    assert caught.value.hint == "it is not an emulator database: delete it, or pass another --db"


def test_database_in_an_unwritable_place_is_an_emulator_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EmulatorError) as caught:
        EmulatorServer(db_path=blocker / "bots.sqlite3").start()
    assert caught.value.message.startswith(
        f"cannot open the emulator database {blocker / 'bots.sqlite3'}: "
    )


def test_file_database_uses_wal(tmp_path: Path) -> None:
    db_path = tmp_path / "bots.sqlite3"
    with EmulatorServer(db_path=db_path):
        pass
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


# building blocks ----------------------------------------------------------------------------


def test_signature_is_lowercase_hex_sha1_of_secret_nonce_timestamp() -> None:
    expected = hashlib.sha1(b"secretnonce1700000000000").hexdigest()
    assert sign("secret", "nonce", "1700000000000") == expected


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1700000000", 1700000000.0),
        ("1700000000123", 1700000000.123),
        ("-5", None),
        ("", None),
        ("٣", None),
        ("9" * 17, None),
        ("9" * 400, None),
    ],
)
def test_timestamp_units(raw: str, seconds: float | None) -> None:
    assert timestamp_seconds(raw) == seconds


def test_nonce_is_forgotten_once_it_can_no_longer_pass_the_clock_check() -> None:
    nonces = NonceRegistry(window_seconds=600)
    assert nonces.remember("app", "n1", now=1000.0)
    assert not nonces.remember("app", "n1", now=1500.0)
    assert nonces.remember("app", "n1", now=1601.0)


def test_verifier_uses_the_given_clock() -> None:
    verifier = SignatureVerifier({"k": "s"}, clock=lambda: 1_700_000_000.0)
    headers = {
        "App-Key": "k",
        "Nonce": "n",
        "Timestamp": "1700000299",
        "Signature": sign("s", "n", "1700000299"),
    }
    assert verifier.verify(headers) == ("k", None)
    late = {**headers, "Nonce": "m", "Timestamp": "1700000301"}
    late["Signature"] = sign("s", "m", "1700000301")
    _, failure = verifier.verify(late)
    assert failure is not None
    assert failure.message == "Timestamp: more than 5 minutes away from the server clock"


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    verifier = SignatureVerifier({"k": "s"})
    headers = signed_headers("k", "s")
    headers["Signature"] = "é" * 40
    assert verifier.verify(headers)[1] is not None


def test_sliding_window_counts_only_accepted_calls() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, clock=lambda: now[0])
    assert limiter.admit("k", "/p")
    now[0] = 0.5
    assert limiter.admit("k", "/p")
    assert not limiter.admit("k", "/p")  # 2 accepted in (−0.5, 0.5]
    now[0] = 1.0
    assert limiter.admit("k", "/p")  # the call at 0.0 left the window
    assert not limiter.admit("k", "/p")
    now[0] = 1.6
    assert limiter.admit("k", "/p")
    stats = limiter.stats()
    assert stats["calls"] == {"k /p": 4}
    assert stats["max_per_second"] == {"k /p": 2}
    assert stats["rate_limited"] == {"k /p": 2}
    limiter.reset()
    assert limiter.stats()["calls"] == {}


def test_max_per_second_reports_the_busiest_window() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(100, clock=lambda: now[0])
    for step in range(10):  # 10 calls/s
        now[0] = step * 0.1
        limiter.admit("k", "/p")
    assert limiter.stats()["max_per_second"] == {"k /p": 10}


def test_fault_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError) as caught:
        FaultConfig(error_rate=1.5)
    assert caught.value.message == "fault error_rate must be at least 0 and at most 1, got 1.5"
    assert caught.value.hint == "rates are fractions: 0.25 means one request in four"
    with pytest.raises(ConfigError) as caught:
        FaultConfig(burst_429=-1)
    assert caught.value.message == "fault burst_429 must be 0 or more, got -1"
    with pytest.raises(ConfigError) as caught:
        FaultConfig(latency_ms=-1)
    assert caught.value.message == "fault latency_ms must be at least 0, got -1"
    with pytest.raises(ConfigError) as caught:
        FaultConfig(random_undocumented_codes=1)  # type: ignore[arg-type]
    assert caught.value.message == "fault random_undocumented_codes must be true or false, got 1"
    assert caught.value.hint == "true answers every undocumented outcome with a random code"


class RiggedDraws(random.Random):
    """Draws the given codes in order."""

    def __init__(self, *codes: int) -> None:
        super().__init__(0)
        self.codes = list(codes)

    def choice(self, seq: Any) -> Any:
        return self.codes.pop(0)


def test_undocumented_code_skips_documented_and_invented_codes() -> None:
    draws = RiggedDraws(200, 1002, 1004, 1008, 1010, 1404, 1502, 1508, 404, 405, 31337)
    assert draw_undocumented_code(draws) == 31337
    assert {200, 1000, 1001, 1002, 1004, 1008, 1009, 1015, 1502, 1508} <= DOCUMENTED_CODES
    assert {404, 405, 1010, 1404, 1502} == INVENTED_CODES


def test_undocumented_codes_repeat_with_the_seed_and_stay_out_of_the_tables() -> None:
    def codes(seed: int) -> list[int | None]:
        injector = FaultInjector(FaultConfig(random_undocumented_codes=True, seed=seed))
        return [injector.undocumented_code() for _ in range(200)]

    first = codes(5)
    assert first == codes(5) != codes(6)
    assert all(code in RANDOM_CODES for code in first)
    assert not set(first) & (DOCUMENTED_CODES | INVENTED_CODES)
    assert FaultInjector(FaultConfig(seed=5)).undocumented_code() is None  # switched off


def test_set_faults_rejects_unknown_names() -> None:
    server = EmulatorServer()
    with pytest.raises(ConfigError) as caught:
        server.set_faults(chaos=1)
    assert caught.value.message == "unknown fault setting chaos"
    assert caught.value.hint == (
        "use any of: latency_ms, error_rate, burst_429, drop_after_commit, "
        "random_undocumented_codes, seed"
    )


def test_fault_draws_repeat_with_the_same_seed() -> None:
    def draws() -> list[bool]:
        injector = FaultInjector(FaultConfig(error_rate=0.3, drop_after_commit=0.6, seed=11))
        return [injector.should_fail() or injector.should_drop() for _ in range(50)]

    first = draws()
    assert first == draws()
    assert True in first and False in first


def test_admin_endpoints_refuse_non_loopback_clients(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bots.sqlite3")
    state = EmulatorState(
        store=store,
        verifier=SignatureVerifier({APP_KEY: APP_SECRET}),
        limiter=SlidingWindowLimiter(100),
        faults=FaultInjector(),
    )

    async def call(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(state), client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return await client.get("/_emulator/stats")

    try:
        refused = asyncio.run(call("203.0.113.7"))
        allowed = asyncio.run(call("::1"))
    finally:
        store.close()
    assert refused.status_code == 403
    assert refused.json() == {
        "code": 403,
        "errorMessage": "admin endpoints answer only loopback clients",
    }
    assert allowed.status_code == 200


def test_store_rejects_duplicates_and_quota(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bots.sqlite3")
    try:
        assert store.create("k", {"userId": "a"}, quota=1) is None
        assert store.create("k", {"userId": "a"}, quota=5) == "duplicate"
        assert store.create("k", {"userId": "b"}, quota=1) == "quota"
        assert store.count("k") == 1
        assert store.replace("k", {"userId": "a", "name": "x"})
        assert not store.replace("k", {"userId": "zz"})
        stored = store.get("k", "a")
        assert stored is not None and stored.body == {"userId": "a", "name": "x"}
    finally:
        store.close()


def test_signed_calls_from_many_threads_are_all_answered() -> None:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}) as server:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with httpx.Client(base_url=server.url) as client:
                    Api(client).ok("create", bot(f"bot-{n}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with httpx.Client(base_url=server.url) as client:
            assert Api(client).ok("query", {})["total"] == 10


# the list of assumptions --------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def numbered_items(text: str) -> list[str]:
    """The numbered list that ends ``text``, each item with code spans written the same way for
    Markdown and reStructuredText, bold dropped and whitespace collapsed."""
    listed = text[text.index("\n1. ") :].strip()
    items = []
    for item in re.split(r"\n(?=\d+\. )", listed):
        parts = re.split(r"(``.+?``|`[^`]+`)", " ".join(item.split()))
        items.append(
            "".join(
                f"<{part.strip('`')}>" if part.startswith("`") else part.replace("**", "")
                for part in parts
            )
        )
    return items


def test_the_docstring_and_the_docs_list_the_same_assumptions() -> None:
    docs = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = docs[docs.index("## Assumptions to check") :]
    docstring = provisioner.emulator.__doc__ or ""
    assert numbered_items(docstring) == numbered_items(section)
    assert len(numbered_items(section)) == 23
