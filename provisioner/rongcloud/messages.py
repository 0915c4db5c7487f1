"""Publishing a one-to-one message: ``POST /message/private/publish.json`` (reference §4),
form-encoded and signed like every server API call (step 4 of RongCloud's bot guide).

A publish is a write that must not be repeated blindly (the user would get the message
twice): only a connect error (nothing was sent; the next host is tried) and HTTP 429 / code
1008 (refused) are retried; an answer lost after sending is an AmbiguousWriteError.
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
    retry = RetryPolicy(
        attempts=MAX_ATTEMPTS, backoff_base=RETRY_BACKOFF, backoff_max=RETRY_BACKOFF, sleep=sleep
    )
    each_host = itertools.cycle(hosts)  # attempt n goes to the next host: primary, backup, ...
    auth = RongCloudAuth(app_key, app_secret)
    with http_client(auth=auth, timeout=httpx.Timeout(timeout), transport=transport) as client:
        return retry.call(lambda: _attempt(client, next(each_host), form, [app_secret]))


def _attempt(client: httpx.Client, host: str, form: dict[str, str], secrets: list[str]) -> str:
    request_id = new_request_id()
    try:
        response = client.post(host + PUBLISH, data=form, headers={REQUEST_ID_HEADER: request_id})
        body = read_body(response)
    except NOT_SENT as exc:
        error = TransportError(
            f"could not connect to {host} for {PUBLISH} ({type(exc).__name__})",
            endpoint=PUBLISH,
            hint="check the endpoint in app.yaml and the network",
        )
        raise Retry(error, wait=0.0) from None
    except (httpx.RequestError, OversizedAnswer) as exc:
        raise AmbiguousWriteError(
            f"{PUBLISH} to {host} got no usable answer ({type(exc).__name__}); the message "
            f"may or may not have been sent (request id {request_id})",
            endpoint=PUBLISH,
            hint="check the conversation in a client before sending it again",
        ) from None
    answer = read_answer(response, request_id, secrets, body=body)
    if answer.ok:
        return _message_uid(answer.data)
    if answer.rate_limited:
        raise Retry(api_error(PUBLISH, answer), wait=retry_after(response, time.time()))
    raise api_error(PUBLISH, answer)


def _message_uid(data: dict[str, Any]) -> str:
    """``messageUIDs[0].messageUID``, or an older answer's ``messageUID``."""
    uids = data.get("messageUIDs")
    if isinstance(uids, list) and uids and isinstance(uids[0], dict):
        uid = uids[0].get("messageUID")
        if isinstance(uid, str):
            return uid
    single = data.get("messageUID")
    return single if isinstance(single, str) else "(no message id in the answer)"
