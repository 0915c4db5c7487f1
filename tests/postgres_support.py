"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a server on
a unix socket only (no TCP port), stopped at the end of the session.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) or any on PATH are used;
initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user.

When the server cannot start, the postgres tests are skipped with the reason, unless this is
CI (``CI`` set) or ``PROVISIONER_TEST_POSTGRES=require``: then they fail, so that a CI run
never passes without them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REQUIRE_ENV = "PROVISIONER_TEST_POSTGRES"
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


def postgres_required() -> bool:
    """True in CI or when asked: then a server that cannot start fails the tests."""
    return bool(os.environ.get("CI")) or os.environ.get(REQUIRE_ENV) == "require"


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (newest Debian version first, then PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    if versions:
        return versions[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_owner(command: Sequence[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else list(command)


def _run(command: Sequence[str], owner: str | None) -> None:
    result = subprocess.run(
        _as_owner(command, owner), capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stderr.strip()[-500:]}")


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a cluster, yield it, stop it and remove its files (RuntimeError when it
    cannot start, saying why)."""
    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb) found; install postgresql")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="provisioner-pg-"))
    try:
        if owner:
            entry = pwd.getpwnam(owner)
            os.chown(root, entry.pw_uid, entry.pw_gid)
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
