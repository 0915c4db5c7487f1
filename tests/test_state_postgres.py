"""The postgres backend against a real server (a throwaway cluster, a schema per test)."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from provisioner.errors import ConfigError, LockedError, StateError
from provisioner.models import PostgresStateSettings
from provisioner.state.drift_record import BotSeen, DriftRecord
from provisioner.state.postgres.backend import PostgresBackend, close_stores, shared_store
from provisioner.state.postgres.store import SCHEMA_VERSION, PostgresStore
from tests.postgres_support import PASSWORD, PASSWORD_USER, Cluster, read_only_role
from tests.state_support import next_state

CANARY = "CANARY-pg-password-77c1"


@pytest.fixture
def stores() -> Iterator[list[PostgresStore]]:
    made: list[PostgresStore] = []
    yield made
    for store in made:
        store.close()
    close_stores()


def backend_of(
    stores: list[PostgresStore], dsn: str, schema: str, app: str = "demo", tmp: Path = Path(".")
) -> PostgresBackend:
    store = PostgresStore(dsn, schema, where=f"postgres schema {schema}", application_name="t")
    stores.append(store)
    return PostgresBackend(app, store, base_dir=tmp)


def query(cluster: Cluster, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        cursor = connection.execute(sql, list(args))
        return cursor.fetchall() if cursor.description is not None else []


def test_reads_create_nothing_and_the_first_write_creates_versioned_tables(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    backend = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    assert backend.read_recorded() is None and not backend.is_locked()
    assert backend.read_drift_record() is None
    assert query(pg_cluster, "SELECT to_regnamespace(%s)", pg_schema) == [(None,)]
    backend.write(next_state(backend.read(), "a"))
    versions = query(pg_cluster, f"SELECT version FROM {pg_schema}.migrations ORDER BY 1")
    assert versions == [(1,), (SCHEMA_VERSION,)] and SCHEMA_VERSION == 2
    again = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    with again.lock("provisioner apply"):  # migrating again changes nothing
        pass
    assert query(pg_cluster, f"SELECT count(*) FROM {pg_schema}.migrations") == [(2,)]
    rows = query(pg_cluster, f"SELECT app, serial FROM {pg_schema}.states")
    assert rows == [("demo", 1)]


def test_layout_1_reads_no_drift_record_and_the_first_record_upgrades_it(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    backend = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    backend.write(next_state(backend.read(), "a"))
    query(pg_cluster, f"DROP TABLE {pg_schema}.drift_records")  # as an earlier release left it
    query(pg_cluster, f"DELETE FROM {pg_schema}.migrations WHERE version = 2")
    older = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    assert older.read_drift_record() is None
    record = DriftRecord("demo", "2026-12-07T03:00:12Z", None, {"a": BotSeen("missing")}, None, 1)
    older.write_drift_record(record)
    assert backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path).read_drift_record() == (
        record
    )
    assert query(pg_cluster, f"SELECT max(version) FROM {pg_schema}.migrations") == [(2,)]
    assert query(pg_cluster, f"SELECT app, serial FROM {pg_schema}.states") == [("demo", 1)]


def test_tables_of_a_newer_layout_are_refused(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    backend = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    backend.write(next_state(backend.read(), "a"))
    query(pg_cluster, f"INSERT INTO {pg_schema}.migrations (version) VALUES (99)")
    with pytest.raises(StateError) as caught:
        backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path).read()
    assert caught.value.message == (
        f"postgres schema {pg_schema}: the state tables have layout version 99, newer than"
        f" this provisioner supports ({SCHEMA_VERSION})"
    )


def test_the_same_app_in_two_schemas_has_two_locks(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    first = backend_of(stores, pg_cluster.dsn(), pg_schema + "_a", tmp=tmp_path)
    second = backend_of(stores, pg_cluster.dsn(), pg_schema + "_b", tmp=tmp_path)
    with first.lock("provisioner apply"), second.lock("provisioner apply"):
        assert first.is_locked() and second.is_locked()
        names = query(
            pg_cluster,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        )
        assert names == [(2,)]


def test_the_holder_is_named_in_the_row_and_in_application_name(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    store = shared_store(pg_cluster.dsn(), pg_schema, f"postgres schema {pg_schema}")
    backend = PostgresBackend("demo", store, base_dir=tmp_path)
    with backend.lock("provisioner apply"):
        (name,) = query(
            pg_cluster,
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory'",
        )[0]
        assert str(name).startswith("provisioner ") and " pid " in str(name)
        other = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
        query(pg_cluster, f"DELETE FROM {pg_schema}.locks")  # the row is gone: still named
        with pytest.raises(LockedError) as caught, other.lock("provisioner apply"):
            pass  # pragma: no cover - never entered
    assert caught.value.message.startswith(f"the state of app demo is locked by {name}")


def test_a_write_under_a_lost_lock_is_refused_and_kept_locally(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore], tmp_path: Path
) -> None:
    backend = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    backend.write(next_state(backend.read(), "a"))
    with pytest.raises(StateError) as caught, backend.lock("provisioner apply"):
        state = next_state(backend.read(), "b")
        assert backend.unlock() is not None  # `state unlock --force` from elsewhere ends us
        backend.write(state)
    assert caught.value.message.startswith(
        f"could not store the state of app demo (serial 2) in postgres schema {pg_schema}: "
    )
    assert caught.value.hint is not None
    assert "`provisioner state push demo .provisioner/state-unsaved/demo.json`" in (
        caught.value.hint
    )
    saved = tmp_path / ".provisioner" / "state-unsaved" / "demo.json"
    assert '"b"' in saved.read_text()


def test_a_session_shared_with_another_holder_is_a_pooler(
    pg_cluster: Cluster,
    pg_schema: str,
    stores: list[PostgresStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a transaction pooler, two clients can land on one server session, where
    pg_try_advisory_lock succeeds for both: the row naming this very session gives it away."""
    monkeypatch.setattr("provisioner.state.postgres.store.MAX_SESSIONS", 1)
    backend = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    backend.write(next_state(backend.read(), "a"))
    session = backend.store.lock_session("another-client")
    query(
        pg_cluster,
        f"INSERT INTO {pg_schema}.locks (app, token, backend_pid, holder)"
        " VALUES ('demo', 'other', %s, '{}')",
        session.pid,
    )
    with pytest.raises(StateError) as caught, backend.lock("provisioner apply"):
        pass  # pragma: no cover - never entered
    assert "transaction-mode pooler" in caught.value.message
    assert caught.value.hint == "point state.dsn at the server itself, or at a pool in session mode"


def test_the_dsn_and_its_password_never_appear_in_errors(
    pg_cluster: Cluster, pg_schema: str, stores: list[PostgresStore]
) -> None:
    wrong = pg_cluster.dsn(user=PASSWORD_USER, password=CANARY)
    cases = [wrong, f"host=/nowhere password={CANARY} dbname", f"{CANARY} not a dsn"]
    for dsn in cases:
        backend = backend_of(stores, dsn, pg_schema)
        with pytest.raises(StateError) as caught:
            backend.read()
        shown = "".join(traceback.format_exception(caught.value))
        assert CANARY not in shown, shown
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    right = backend_of(stores, pg_cluster.dsn(user=PASSWORD_USER, password=PASSWORD), pg_schema)
    assert right.read_recorded() is None


def test_a_missing_dsn_variable_is_named_never_its_value(tmp_path: Path) -> None:
    settings = PostgresStateSettings.model_validate(
        {"backend": "postgres", "dsn": "${PROVISIONER_STATE_DSN}"}
    )
    with pytest.raises(ConfigError) as caught:
        PostgresBackend.for_settings("demo", settings, tmp_path, {})
    assert caught.value.message == (
        "app demo: state.dsn: environment variable PROVISIONER_STATE_DSN is not set"
    )
    backend = PostgresBackend.for_settings(
        "demo", settings, tmp_path, {"PROVISIONER_STATE_DSN": "host=/nowhere"}
    )
    assert backend.describe() == "postgres schema provisioner"
    assert "nowhere" not in repr(backend)


def test_read_only_commands_use_read_dsn_when_its_variables_are_set(tmp_path: Path) -> None:
    settings = PostgresStateSettings.model_validate(
        {"backend": "postgres", "dsn": "${WRITE_DSN}", "readDsn": "${READ_DSN}"}
    )
    both = {"WRITE_DSN": "host=/nowhere/write", "READ_DSN": "host=/nowhere/read"}

    def dsn_of(env: dict[str, str], read_only: bool) -> tuple[str, bool]:
        backend = PostgresBackend.for_settings("demo", settings, tmp_path, env, read_only=read_only)
        return backend.store._dsn, backend.read_only

    assert dsn_of(both, True) == ("host=/nowhere/read", True)
    assert dsn_of(both, False) == ("host=/nowhere/write", False)
    assert dsn_of({"WRITE_DSN": both["WRITE_DSN"]}, True) == ("host=/nowhere/write", False)
    assert dsn_of({"READ_DSN": both["READ_DSN"]}, True) == ("host=/nowhere/read", True)
    with pytest.raises(ConfigError) as caught:
        dsn_of({"READ_DSN": both["READ_DSN"]}, False)
    assert caught.value.message == "app demo: state.dsn: environment variable WRITE_DSN is not set"
    with pytest.raises(ConfigError) as caught:
        dsn_of({}, True)
    assert caught.value.message == (
        "app demo: state.readDsn: environment variable READ_DSN is not set"
    )


@pytest.mark.parametrize(
    ("read_only_transactions", "refusal"),
    [(True, "cannot execute {} in a read-only transaction"), (False, "permission denied")],
)
def test_a_read_only_role_reads_and_cannot_lock_or_write(
    pg_cluster: Cluster,
    pg_schema: str,
    stores: list[PostgresStore],
    tmp_path: Path,
    read_only_transactions: bool,
    refusal: str,
) -> None:
    owner = backend_of(stores, pg_cluster.dsn(), pg_schema, tmp=tmp_path)
    owner.write(next_state(owner.read(), "a"))
    role = read_only_role(pg_cluster, pg_schema, read_only_transactions=read_only_transactions)
    reader = backend_of(stores, pg_cluster.dsn(user=role), pg_schema, tmp=tmp_path)
    recorded = reader.read_recorded()
    assert recorded is not None and recorded.serial == 1
    assert not reader.is_locked() and reader.lock_holder() is None
    with pytest.raises(StateError) as caught, reader.lock("provisioner apply"):
        pass  # pragma: no cover - never entered
    assert caught.value.message.startswith(
        f"postgres schema {pg_schema}: cannot lock the state of app demo:"
        f" {refusal.format('DELETE')}"
    )
    assert caught.value.hint == (
        "the DSN's role may not do this: locking and writing need SELECT, INSERT, UPDATE and"
        ' DELETE on the schema\'s tables (docs/state.md, "Roles"); a read-only role belongs in'
        " state.readDsn, which only the commands that read use"
    )
    with pytest.raises(StateError) as caught:
        reader.write(next_state(recorded, "b"))
    assert f"the write failed: {refusal.format('UPDATE')}" in caught.value.message
    assert query(pg_cluster, f"SELECT serial FROM {pg_schema}.states") == [(1,)]
    # a backend opened through readDsn refuses before asking the server
    flagged = PostgresBackend("demo", reader.store, base_dir=tmp_path, read_only=True)
    for attempt in (lambda: flagged.write(next_state(recorded, "b")), flagged.unlock):
        with pytest.raises(StateError) as caught:
            attempt()
        assert "through state.readDsn, which is for reading only" in caught.value.message
    with pytest.raises(StateError), flagged.lock("provisioner apply"):
        pass  # pragma: no cover - never entered
