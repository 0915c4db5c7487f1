"""A transaction-mode connection pooler on loopback, in front of the test cluster: what
PgBouncer with ``pool_mode = transaction`` does to a client, for the pooler tests.

It speaks the PostgreSQL wire protocol (v3) on 127.0.0.1 to its clients and keeps a few server
connections of its own to the cluster's unix socket. A client's transaction (from its first
message until the server reports ``ReadyForQuery`` idle) runs on one server connection, which
then goes back to the pool, with whatever the client left in its session (advisory locks,
settings, prepared statements): PgBouncer's transaction mode resets nothing by default
(``server_reset_query`` is not run in transaction mode). The next transaction gets:

* ``rotate``: the next idle server connection in turn, so a client's consecutive
  transactions land on different server sessions (what a busy PgBouncer does);
* ``lifo``: the connection released last (PgBouncer's default, ``server_round_robin = 0``):
  a lone client keeps landing on one server session, until another client takes it.

It authenticates no one (the cluster trusts its unix socket), answers ``SSLRequest`` and
``GSSENCRequest`` with ``N``, does not pass cancel requests on, and ends a client whose server
connection dies. Each client is served by its own thread.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from tests.postgres_support import Cluster

Policy = Literal["rotate", "lifo"]
PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    """One typed message: (type byte, the whole message as sent)."""
    head = _read_exactly(sock, 5)
    (length,) = struct.unpack(">i", head[1:])
    return head[:1], head + _read_exactly(sock, length - 4)


class Server:
    """One server connection of the pool (a session of the cluster)."""

    def __init__(self, cluster: Cluster) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(Path(cluster.socket_dir) / f".s.PGSQL.{cluster.port}"))
        params = b"user\0postgres\0database\0postgres\0application_name\0pooler\0\0"
        self.sock.sendall(struct.pack(">ii", 8 + len(params), PROTOCOL_3) + params)
        self.parameters: list[bytes] = []
        while True:
            kind, message = read_message(self.sock)
            if kind == b"S":
                self.parameters.append(message)
            elif kind == b"E":
                raise ConnectionError(message[5:].decode("utf-8", "replace"))
            elif kind == b"Z":
                return


class TransactionPooler:
    """The pooler, listening on 127.0.0.1 (``dsn`` connects to it)."""

    def __init__(self, cluster: Cluster, *, policy: Policy = "rotate", servers: int = 3) -> None:
        self.cluster = cluster
        self.policy = policy
        self._ring = [Server(cluster) for _ in range(servers)]
        """Every server connection, in the order ``rotate`` hands them out."""
        self._idle: list[Server] = list(self._ring)
        self._parameters = self._ring[0].parameters
        self._turn = -1
        self._available = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.transactions = 0
        """Transactions served so far (over every client)."""
        self._clients: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def close(self) -> None:
        with self._available:
            self._closed = True
        self._listener.close()
        with self._available:
            servers, self._idle = self._idle, []
            clients, self._clients = self._clients, []
        for item in [*clients, *(server.sock for server in servers)]:
            item.close()

    # --- the pool -----------------------------------------------------------------------

    def _acquire(self) -> Server:
        with self._available:
            while not self._idle:
                if not self._available.wait(timeout=30):
                    raise ConnectionError("no server connection came back within 30 s")
            self.transactions += 1
            if self.policy == "lifo":
                return self._idle.pop()
            ring = len(self._ring)
            for step in range(1, ring + 1):
                candidate = self._ring[(self._turn + step) % ring]
                if candidate in self._idle:
                    self._turn = (self._turn + step) % ring
                    self._idle.remove(candidate)
                    return candidate
            return self._idle.pop()  # pragma: no cover - every idle server is in the ring

    def _release(self, server: Server | None) -> None:
        if server is None:
            return
        with self._available:
            if self._closed:
                server.sock.close()
                return
            self._idle.append(server)
            self._available.notify()

    def _replace(self, server: Server) -> None:
        """A server connection that died (pg_terminate_backend) is replaced by a new one."""
        server.sock.close()
        try:
            fresh = Server(self.cluster)
        except OSError:
            return
        with self._available:
            self._ring = [fresh if item is server else item for item in self._ring]
        self._release(fresh)

    # --- clients ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._available:
                if self._closed:  # accepted as close() ran: nobody else will close it
                    client.close()
                    return
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server: Server | None = None
        try:
            if not self._start(client):
                return
            while True:
                kind, message = read_message(client)
                if kind == b"X":
                    return
                if server is None:
                    server = self._acquire()
                try:
                    server.sock.sendall(message)
                    if kind in (b"S", b"Q"):
                        status = self._relay(server, client)
                        if status == b"I":
                            self._release(server)
                            server = None
                except ConnectionError:
                    if server is not None:
                        self._replace(server)
                        server = None
                    return
        except (ConnectionError, OSError):
            return
        finally:
            if server is not None:  # a client gone mid-transaction: roll it back
                self._end_transaction(server)
            client.close()

    def _start(self, client: socket.socket) -> bool:
        """The startup exchange; False for a cancel request (not passed on)."""
        while True:
            (length,) = struct.unpack(">i", _read_exactly(client, 4))
            body = _read_exactly(client, length - 4)
            (code,) = struct.unpack(">i", body[:4])
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")
                continue
            if code != PROTOCOL_3:
                return False
            break
        reply = [struct.pack(">cii", b"R", 8, 0), *self._parameters]
        reply.append(struct.pack(">ciii", b"K", 12, 1, 1))
        reply.append(struct.pack(">cic", b"Z", 5, b"I"))
        client.sendall(b"".join(reply))
        return True

    def _relay(self, server: Server, client: socket.socket) -> bytes:
        """Pass the server's answers to the client up to ReadyForQuery; its status."""
        while True:
            kind, message = read_message(server.sock)
            client.sendall(message)
            if kind == b"Z":
                return message[5:6]

    def _end_transaction(self, server: Server) -> None:
        try:
            query = b"ROLLBACK\0"
            server.sock.sendall(b"Q" + struct.pack(">i", 4 + len(query)) + query)
            while read_message(server.sock)[0] != b"Z":
                pass
        except (ConnectionError, OSError):
            self._replace(server)
            return
        self._release(server)


@contextmanager
def transaction_pooler(cluster: Cluster, policy: Policy = "rotate") -> Iterator[TransactionPooler]:
    pooler = TransactionPooler(cluster, policy=policy)
    try:
        yield pooler
    finally:
        pooler.close()
