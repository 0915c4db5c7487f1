"""The postgres backend behind a transaction-mode pooler (tests/pg_pooler.py, in front of the
real test cluster): refused before any call, with one clear message, never half-working.

``rotate`` hands each transaction another server session (a busy PgBouncer); ``lifo`` hands a
lone client the session it used last (PgBouncer's default), so that only a second connection
can show that the session is shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.errors import StateError, StateNotPersistedError
from provisioner.state.postgres.backend import PostgresBackend
from provisioner.state.postgres.lock import AppLock
from provisioner.state.postgres.store import PostgresStore, Session
from tests.apply_support import ENV, enter_workspace, write_calls
from tests.pg_pooler import Policy, transaction_pooler
from tests.postgres_support import Cluster
from tests.state_support import next_state

POOLER = (
    ": the connection does not keep its database session ({}): a transaction-mode pooler"
    " (such as PgBouncer with pool_mode=transaction) sits in between, and session advisory"
    " locks cannot work through it"
)
LOCKING = ": cannot lock the state of app demo"
HINT = "point state.dsn at the server itself, or at a pool in session mode"


@pytest.fixture
def opened() -> Iterator[list[PostgresStore]]:
    stores: list[PostgresStore] = []
    yield stores
    for store in stores:
        store.close()


def backend(dsn: str, schema: str, opened: list[PostgresStore], tmp: Path) -> PostgresBackend:
    store = PostgresStore(dsn, schema, where=f"postgres schema {schema}", application_name="t")
    opened.append(store)
    return PostgresBackend("demo", store, base_dir=tmp)


def advisory_locks(cluster: Cluster) -> int:
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
    return int(row[0]) if row else -1


def test_a_pooler_handing_out_another_session_per_transaction_is_refused_at_connect(
    pg_cluster: Cluster, pg_schema: str, opened: list[PostgresStore], tmp_path: Path
) -> None:
    with transaction_pooler(pg_cluster, "rotate") as pooler:
        found = backend(pooler.dsn(), pg_schema, opened, tmp_path)
        with pytest.raises(StateError) as caught, found.lock("provisioner apply"):
            pass  # pragma: no cover - never entered
        first = pooler.transactions
    expected = re.escape(f"postgres schema {pg_schema}{LOCKING}" + POOLER.format("DETAIL"))
    detail = r"the second statement ran on server session \d+, not \d+"
    assert re.fullmatch(expected.replace("DETAIL", detail), caught.value.message)
    assert caught.value.hint == HINT
    assert first <= 4  # refused after the connection's first statements: nothing locked
    assert advisory_locks(pg_cluster) == 0


def test_a_pooler_reusing_the_idle_session_is_refused_after_the_lock_which_it_gives_back(
    pg_cluster: Cluster, pg_schema: str, opened: list[PostgresStore], tmp_path: Path
) -> None:
    with transaction_pooler(pg_cluster, "lifo") as pooler:
        found = backend(pooler.dsn(), pg_schema, opened, tmp_path)
        assert found.read_recorded() is None  # reads work: each is one transaction
        with pytest.raises(StateError) as caught, found.lock("provisioner apply"):
            pass  # pragma: no cover - never entered
        expected = re.escape(f"postgres schema {pg_schema}{LOCKING}" + POOLER.format("DETAIL"))
        detail = (
            r"another connection of this process was handed server session \d+,"
            " which holds the lock"
        )
        assert re.fullmatch(expected.replace("DETAIL", detail), caught.value.message)
        assert advisory_locks(pg_cluster) == 0  # given back on the session that took it
        opened.pop().close()
    direct = backend(pg_cluster.dsn(), pg_schema, opened, tmp_path)
    assert not direct.is_locked() and direct.lock_holder() is None


def test_the_proof_is_a_separate_statement_on_the_session_that_took_the_lock(
    pg_cluster: Cluster, pg_schema: str, opened: list[PostgresStore]
) -> None:
    """What a pooler does between two statements, done by hand: the statement after the lock
    (or the one taking it) runs on another server session."""
    store = PostgresStore(pg_cluster.dsn(), pg_schema, where="here", application_name="t")
    opened.append(store)
    took, other = store.connect(), store.connect()
    lock = AppLock(pg_schema, "demo", "here")
    key = lock.key(took.connection)
    elsewhere = Session(other.connection, took.pid, took.marker)
    with pytest.raises(StateError) as caught:
        lock.try_lock(elsewhere, key)
    assert caught.value.message == f"here{LOCKING}" + POOLER.format(
        f"the statement taking the lock ran on server session {other.pid},"
        f" not on this connection's ({took.pid})"
    )
    assert advisory_locks(pg_cluster) == 0
    assert lock.try_lock(took, key)
    with store.reading() as reader, pytest.raises(StateError) as caught:
        lock.prove(elsewhere, key, reader)
    assert caught.value.message == f"here{LOCKING}" + POOLER.format(
        f"the statement after taking the lock ran on server session {other.pid},"
        f" not on {took.pid}, which took it"
    )
    with store.reading() as reader:
        lock.prove(took, key, reader)  # the real session: proven
    took.connection.close()
    other.connection.close()


def test_a_write_landing_on_another_session_says_pooler_not_lost_lock(
    pg_cluster: Cluster, pg_schema: str, opened: list[PostgresStore], tmp_path: Path
) -> None:
    found = backend(pg_cluster.dsn(), pg_schema, opened, tmp_path)
    with found.lock("provisioner apply"):
        session = found._session
        assert session is not None
        stray = psycopg.connect(pg_cluster.dsn(), autocommit=True)
        session.connection, real = stray, session.connection  # the pooler switched sessions
        try:
            with pytest.raises(StateNotPersistedError) as caught:
                found.write(next_state(found.read(), "a"))
        finally:
            session.connection = real
            stray.close()
    expected = re.escape(
        f"could not store the state of app demo (serial 1) in postgres schema {pg_schema}"
        + POOLER.format("DETAIL")
        + "; it is kept in .provisioner/state-unsaved/demo.json"
    )
    detail = r"a write ran on server session \d+, not \d+"
    assert re.fullmatch(expected.replace("DETAIL", detail), caught.value.message)


def test_no_statement_is_prepared_so_clients_sharing_a_session_do_not_collide(
    pg_cluster: Cluster, pg_schema: str, opened: list[PostgresStore], tmp_path: Path
) -> None:
    """psycopg prepares a statement run 5 times (``_pg3_0``...): through a pooler, two
    clients would prepare the same name on one server session ("already exists")."""
    with transaction_pooler(pg_cluster, "lifo") as pooler:
        first = backend(pooler.dsn(), pg_schema, opened, tmp_path)
        second = backend(pooler.dsn(), pg_schema, opened, tmp_path)
        for _ in range(8):
            assert first.read_recorded() is None and second.read_recorded() is None
        with first.store.reading() as connection:
            assert connection.prepare_threshold is None
        for store in opened:
            store.close()


@pytest.mark.parametrize("policy", ["rotate", "lifo"])
def test_cli_apply_through_a_transaction_pooler_is_refused_before_any_call(
    policy: Policy,
    pg_cluster: Cluster,
    pg_schema: str,
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = f'state: {{backend: postgres, dsn: "${{POOLED_DSN}}", schema: {pg_schema}}}\n'
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, ENV)
    workspace.app(extra=state)
    workspace.bot("helper-bot")
    with transaction_pooler(pg_cluster, policy) as pooler:
        monkeypatch.setenv("POOLED_DSN", pooler.dsn())
        code = main(["apply", "demo", "--auto-approve"])
        err = capsys.readouterr().err
        from provisioner.state.postgres.backend import close_stores

        close_stores()
    assert code == 1, err
    assert err.startswith(
        f"error: postgres schema {pg_schema}: cannot lock the state of app demo: the connection"
        " does not keep its database session ("
    )
    assert err.endswith(POOLER.split(")", 1)[1] + f"\n  hint: {HINT}\n")
    assert write_calls(server) == 0
    assert advisory_locks(pg_cluster) == 0
    assert pooler.dsn() not in err
