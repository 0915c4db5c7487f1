"""Registering a user (``POST /user/getToken.json``, step 2 of RongCloud's bot guide) and
publishing a one-to-one message (``POST /message/private/publish.json``, reference §4, step
4), form-encoded and signed like every server API call.

A publish is a write that must not be repeated blindly (the user would get the message
twice): only a connect error (nothing was sent; the next host is tried) and HTTP 429 / code
1008 (refused) are retried; an answer lost after sending is an AmbiguousWriteError. The
same holds for a registration (it only issues a token, but retrying it blindly would hide
what happened).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from provisioner.errors import AmbiguousWriteError, TransportError
from provisioner.http import NOT_SENT, Retry, RetryPolicy, http_client, retry_after
from provisioner.rongcloud.responses import OversizedAnswer, api_error, read_answer, read_body
from provisioner.rongcloud.signing import REQUEST_ID_HEADER, RongCloudAuth, new_request_id

PUBLISH = "/message/private/publish.json"
GET_TOKEN = "/user/getToken.json"
MAX_ATTEMPTS = 3
RETRY_BACKOFF = 1.0
"""The wait after a rate limit without ``Retry-After`` (backoff capped at its base: constant)."""


def publish_private(
    *,
    app_key: str,
    app_secret: str,
    hosts: Sequence[str],
    from_user: str,
    to_user: str,
    object_name: str,
    content: str,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Publish one message; its ``messageUID``. ApiError when RongCloud refuses it."""
    form = {
        "fromUserId": from_user,
        "toUserId": to_user,
        "objectName": object_name,
        "content": content,
    }
    call = _Call(app_key, app_secret, hosts, timeout, transport, sleep)
    return _message_uid(call.post(PUBLISH, form))


def register_user(
    *,
    app_key: str,
    app_secret: str,
    hosts: Sequence[str],
    user_id: str,
    name: str,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Register ``user_id`` (``/user/getToken.json`` with ``userId`` and ``name``), as the
    guide's step 2 does. The token RongCloud answers is not returned: it is a user's
    credential, and nothing here needs it. ApiError when RongCloud refuses it."""
    call = _Call(app_key, app_secret, hosts, timeout, transport, sleep)
    call.post(GET_TOKEN, {"userId": user_id, "name": name})


class _Call:
    """Signed form posts to one app, with the retries of the module docstring."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        hosts: Sequence[str],
        timeout: float,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.auth = RongCloudAuth(app_key, app_secret)
        self.secrets = [app_secret]
        self.hosts = hosts
        self.timeout = timeout
        self.transport = transport
        self.retry = RetryPolicy(
            attempts=MAX_ATTEMPTS,
            backoff_base=RETRY_BACKOFF,
            backoff_max=RETRY_BACKOFF,
            sleep=sleep,
        )

    def post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        each_host = itertools.cycle(self.hosts)  # attempt n goes to the next host
        timeout = httpx.Timeout(self.timeout)
        with http_client(auth=self.auth, timeout=timeout, transport=self.transport) as client:
            return self.retry.call(lambda: self._attempt(client, next(each_host), path, form))

    def _attempt(
        self, client: httpx.Client, host: str, path: str, form: dict[str, str]
    ) -> dict[str, Any]:
        request_id = new_request_id()
        try:
            response = client.post(host + path, data=form, headers={REQUEST_ID_HEADER: request_id})
            body = read_body(response)
        except NOT_SENT as exc:
            error = TransportError(
                f"could not connect to {host} for {path} ({type(exc).__name__})",
                endpoint=path,
                hint="check the endpoint in app.yaml and the network",
            )
            raise Retry(error, wait=0.0) from None
        except (httpx.RequestError, OversizedAnswer) as exc:
            what = (
                "the message may or may not have been sent"
                if path == PUBLISH
                else ("the user may or may not have been registered")
            )
            raise AmbiguousWriteError(
                f"{path} to {host} got no usable answer ({type(exc).__name__}); {what} "
                f"(request id {request_id})",
                endpoint=path,
                hint="check the conversation in a client before sending it again"
                if path == PUBLISH
                else "run the command again: registering a user twice is harmless",
            ) from None
        answer = read_answer(response, request_id, self.secrets, body=body)
        if answer.ok:
            return answer.data
        if answer.rate_limited:
            raise Retry(api_error(path, answer), wait=retry_after(response, time.time()))
        raise api_error(path, answer)


def _message_uid(data: dict[str, Any]) -> str:
    """``messageUIDs[0].messageUID``, or an older answer's ``messageUID``."""
    uids = data.get("messageUIDs")
    if isinstance(uids, list) and uids and isinstance(uids[0], dict):
        uid = uids[0].get("messageUID")
        if isinstance(uid, str):
            return uid
    single = data.get("messageUID")
    return single if isinstance(single, str) else "(no message id in the answer)"
