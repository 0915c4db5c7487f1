"""A small stateful stand-in for RongCloud's bot API, served through httpx.MockTransport.

It checks signatures, keeps bots in a dict, pages and batches like the API, and can be told
to misbehave per call (``script``) or per host (``dead_hosts``). Every request it sees is
recorded in ``requests``; ``commits`` counts writes that took effect.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Fault:
    """One scripted misbehaviour for the next call to a path.

    kind: "status" (answer ``status``/``code`` without acting), "refuse" (connect error, not
    received), "timeout" (read timeout after acting), "drop" (act, then drop the connection).
    """

    kind: str
    status: int = 503
    code: int = 1000
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SeenRequest:
    host: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeBotApi:
    def __init__(self, app_key: str = "key1", app_secret: str = "secret1") -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.bots: dict[str, dict[str, Any]] = {}
        self.requests: list[SeenRequest] = []
        self.commits = 0
        self.dead_hosts: set[str] = set()
        self.scripts: dict[str, deque[Fault]] = {}
        self.echo_body_in_errors = False

    def script(self, path: str, *faults: Fault) -> None:
        self.scripts.setdefault(path, deque()).extend(faults)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, path: str) -> int:
        return sum(1 for seen in self.requests if seen.path == path)

    # -- the handler -----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = f"{request.url.scheme}://{request.url.netloc.decode()}"
        path = request.url.path
        body = json.loads(request.content or b"{}")
        self.requests.append(SeenRequest(host, path, dict(request.headers), body))
        if host in self.dead_hosts:
            raise httpx.ConnectError("connection refused", request=request)
        fault = self.scripts.get(path, deque()).popleft() if self.scripts.get(path) else None
        if fault is not None and fault.kind == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if fault is not None and fault.kind == "status":
            payload = {"code": fault.code, "errorMessage": "injected"}
            return self._answer(request, fault.status, payload, fault.headers)
        status, payload = self._serve(request, path, body)
        if fault is not None and fault.kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault is not None and fault.kind == "drop":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return self._answer(request, status, payload, {})

    def _answer(
        self, request: httpx.Request, status: int, payload: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        request_id = request.headers.get("X-Request-ID", "")
        return httpx.Response(status, json=payload, headers={"X-Request-ID": request_id, **headers})

    def _serve(
        self, request: httpx.Request, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        problem = self._check_signature(request)
        if problem is not None:
            return problem
        handler = {
            "/v3/bot/create.json": self._create,
            "/v3/bot/update.json": self._update,
            "/v3/bot/delete.json": self._delete,
            "/v3/bot/get.json": self._get,
            "/v3/bot/query.json": self._query,
        }.get(path)
        if handler is None:
            return 404, {"code": 404, "errorMessage": "no such API"}
        return handler(body)

    def _check_signature(self, request: httpx.Request) -> tuple[int, dict[str, Any]] | None:
        headers = request.headers
        if headers.get("App-Key") != self.app_key:
            return 401, {"code": 1004, "errorMessage": "Invalid App-Key."}
        nonce, timestamp = headers.get("Nonce", ""), headers.get("Timestamp", "")
        expected = hashlib.sha1((self.app_secret + nonce + timestamp).encode()).hexdigest()
        if headers.get("Signature") != expected:
            return 401, {"code": 1004, "errorMessage": "Signature error."}
        return None

    def _error(
        self, status: int, code: int, message: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if self.echo_body_in_errors:  # a careless server: the client must redact secrets
            message = f"{message}: {json.dumps(body)}"
        return status, {"code": code, "errorMessage": message}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body["userId"] in self.bots:
            return self._error(400, 1010, "userId already exists", body)
        self.bots[body["userId"]] = body
        self.commits += 1
        return 200, {"code": 200}

    def _update(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body["userId"] not in self.bots:
            return self._error(404, 1404, "bot not found", body)
        self.bots[body["userId"]] = body
        self.commits += 1
        return 200, {"code": 200}

    def _delete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.bots.pop(body["userId"], None) is None:
            return self._error(404, 1404, "bot not found", body)
        self.commits += 1
        return 200, {"code": 200}

    def _get(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ids = body.get("userIds") or []
        if len(ids) > 20:
            return 400, {"code": 1502, "errorMessage": "userIds: at most 20"}
        return 200, {"code": 200, "bots": [self.bots[i] for i in ids if i in self.bots]}

    def _query(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        page, size = body.get("page", 1), body.get("pageSize", 10)
        ordered = [self.bots[key] for key in sorted(self.bots)]
        if not body.get("includeIntegration", False):
            ordered = [{k: v for k, v in bot.items() if k != "integrations"} for bot in ordered]
        chunk = ordered[(page - 1) * size : page * size]
        has_next = page * size < len(ordered)
        return 200, {"code": 200, "total": len(ordered), "hasNext": has_next, "bots": chunk}
