"""Stateful loopback stand-ins for the chat robots provisioner notifies: DingTalk's custom
robot, Feishu's custom bot, WeCom's group robot and a webhook receiver of our own. Each is a
threading HTTP server on 127.0.0.1 that checks the token in its address, the signature, the
payload's documented shape and its security settings, records what it accepted, and answers
with the platform's documented bodies (every assumption is listed in docs/notify.md,
"The stand-ins"). Faults: ``refuse_next`` (scripted answers) and ``delay_next`` (an answer
later than the client waits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

SIGN_WINDOW = 3600
"""DingTalk and Feishu accept a timestamp within one hour of their clock."""
DINGTALK_OK = {"errcode": 0, "errmsg": "ok"}
DINGTALK_SIGN = {
    "errcode": 310000,
    "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
}
DINGTALK_KEYWORDS = {"errcode": 310000, "errmsg": "keywords not in content"}
DINGTALK_TOKEN = {"errcode": 300001, "errmsg": "token is not exist"}
DINGTALK_TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
DINGTALK_BUSY = {"errcode": -1, "errmsg": "系统繁忙"}
FEISHU_OK = {"code": 0, "data": {}, "msg": "success"}
FEISHU_SIGN = {
    "code": 19021,
    "data": {},
    "msg": "sign match fail or timestamp is not within one hour from current time",
}
FEISHU_KEYWORDS = {"code": 19024, "data": {}, "msg": "Key Words Not Found"}
FEISHU_TOKEN = {
    "code": 19001,
    "data": {},
    "msg": "param invalid: incoming webhook access token invalid",
}
FEISHU_BAD = {"code": 9499, "data": {}, "msg": "Bad Request"}
WECOM_OK = {"errcode": 0, "errmsg": "ok"}
WECOM_KEY = {
    "errcode": 93000,
    "errmsg": "invalid webhook url, hint: [1700000000_0], from ip: 127.0.0.1",
}
WECOM_TOO_LONG = {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
WECOM_TOO_FAST = {"errcode": 45009, "errmsg": "api freq out of limit"}
WECOM_BUSY = {"errcode": -1, "errmsg": "system busy"}
MAX_PER_MINUTE = 20


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The HTTP side and the bookkeeping shared by the four stand-ins."""

    requests: list[Request] = field(default_factory=list)
    accepted: list[Any] = field(default_factory=list)
    """The JSON messages the platform took (shown in the group)."""
    _scripted: deque[tuple[int, Any]] = field(default_factory=deque)
    _delays: deque[float] = field(default_factory=deque)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def refuse_next(self, times: int, status: int, body: Any) -> None:
        self._scripted.extend([(status, body)] * times)

    def delay_next(self, times: int, seconds: float) -> None:
        self._delays.extend([seconds] * times)

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, request: Request) -> tuple[int, Any]:
        raise NotImplementedError

    def _handle(self, request: Request) -> tuple[int, Any]:
        self.requests.append(request)
        if self._delays:
            self._release.wait(self._delays.popleft())
        if self._scripted:
            return self._scripted.popleft()
        return self.answer(request)

    def _recent(self) -> int:
        return len(self.accepted)

    def __enter__(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                status, body = receiver._handle(request)
                data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def _b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def _within_window(timestamp: float) -> bool:
    return abs(time.time() - timestamp) <= SIGN_WINDOW


@dataclass
class DingTalk(Receiver):
    """``POST /robot/send?access_token=T[&timestamp=MS&sign=S]`` with a markdown message."""

    token: str = "dingtalk-robot-token-0001"
    secret: str | None = None
    keywords: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"{self.base}/robot/send?access_token={self.token}"

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.path != "/robot/send" or request.query.get("access_token") != self.token:
            return 200, DINGTALK_TOKEN
        if self.secret is not None and not self._signed(request.query):
            return 200, DINGTALK_SIGN
        message = request.json
        markdown = message.get("markdown") if message.get("msgtype") == "markdown" else None
        if not isinstance(markdown, dict) or not all(
            isinstance(markdown.get(key), str) and markdown[key] for key in ("title", "text")
        ):
            return 200, {"errcode": 40035, "errmsg": "缺少参数 json"}
        if self.keywords and not any(word in markdown["text"] for word in self.keywords):
            return 200, DINGTALK_KEYWORDS
        if self._recent() >= MAX_PER_MINUTE:
            return 200, DINGTALK_TOO_FAST
        self.accepted.append(message)
        return 200, DINGTALK_OK

    def _signed(self, query: dict[str, str]) -> bool:
        assert self.secret is not None
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        if not timestamp.isdigit() or not _within_window(int(timestamp) / 1000):
            return False
        expected = _b64_hmac(self.secret.encode(), f"{timestamp}\n{self.secret}".encode())
        return hmac.compare_digest(expected, sign)


@dataclass
class Feishu(Receiver):
    """``POST /open-apis/bot/v2/hook/T`` with a post (or text/interactive) message; the
    signature, when the bot has one, in the body."""

    token: str = "feishu-hook-0000-1111"
    secret: str | None = None
    keywords: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"{self.base}/open-apis/bot/v2/hook/{self.token}"

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.path != f"/open-apis/bot/v2/hook/{self.token}":
            return 200, FEISHU_TOKEN
        try:
            message = request.json
        except ValueError:
            return 400, FEISHU_BAD
        if self.secret is not None and not self._signed(message):
            return 200, FEISHU_SIGN
        texts = _post_texts(message)
        if texts is None:
            return 400, FEISHU_BAD
        if self.keywords and not any(word in " ".join(texts) for word in self.keywords):
            return 200, FEISHU_KEYWORDS
        self.accepted.append(message)
        return 200, FEISHU_OK

    def _signed(self, message: dict[str, Any]) -> bool:
        assert self.secret is not None
        timestamp, sign = message.get("timestamp"), message.get("sign")
        if not isinstance(timestamp, str) or not timestamp.isdigit() or not isinstance(sign, str):
            return False
        if not _within_window(int(timestamp)):
            return False
        expected = _b64_hmac(f"{timestamp}\n{self.secret}".encode(), b"")
        return hmac.compare_digest(expected, sign)


def _post_texts(message: Any) -> list[str] | None:
    """The texts of a well-formed ``post`` message (title first); None for another shape."""
    if not isinstance(message, dict) or message.get("msg_type") != "post":
        return None
    posts = message.get("content", {}).get("post")
    if not isinstance(posts, dict) or not posts or not set(posts) <= {"zh_cn", "en_us", "ja_jp"}:
        return None
    texts = []
    for post in posts.values():
        if not isinstance(post.get("title"), str) or not isinstance(post.get("content"), list):
            return None
        texts.append(post["title"])
        for row in post["content"]:
            for element in row:
                if element.get("tag") not in ("text", "a") or not isinstance(
                    element.get("text"), str
                ):
                    return None
                if element["tag"] == "a" and not isinstance(element.get("href"), str):
                    return None
                texts.append(element["text"])
    return texts


@dataclass
class WeCom(Receiver):
    """``POST /cgi-bin/webhook/send?key=K`` with a markdown message (no signing)."""

    key: str = "wecom-robot-key-2222-3333"

    @property
    def url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={self.key}"

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.path != "/cgi-bin/webhook/send" or request.query.get("key") != self.key:
            return 200, WECOM_KEY
        message = request.json
        markdown = message.get("markdown") if message.get("msgtype") == "markdown" else None
        content = markdown.get("content") if isinstance(markdown, dict) else None
        if not isinstance(content, str) or not content:
            return 200, {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode("utf-8")) > 4096:
            return 200, WECOM_TOO_LONG
        if self._recent() >= MAX_PER_MINUTE:
            return 200, WECOM_TOO_FAST
        self.accepted.append(message)
        return 200, WECOM_OK


@dataclass
class Webhook(Receiver):
    """Our own document at ``POST /hooks/provisioner``; with a secret, the HMAC header must
    match. Answers 204."""

    secret: str | None = None

    @property
    def url(self) -> str:
        return f"{self.base}/hooks/provisioner"

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.path != "/hooks/provisioner":
            return 404, {"error": "not found"}
        if self.secret is not None:
            expected = (
                "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(
                expected, request.headers.get("x-provisioner-signature-256", "")
            ):
                return 401, {"error": "bad signature"}
        document = request.json
        if document.get("schema") != "provisioner/notification" or document.get("version") != 1:
            return 422, {"error": "not a provisioner notification"}
        self.accepted.append(document)
        return 204, None
