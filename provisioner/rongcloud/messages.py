"""Publishing a one-to-one message: ``POST /message/private/publish.json`` (reference §4),
form-encoded and signed like every server API call (step 4 of RongCloud's bot guide).

A publish is a write that must not be repeated blindly (the user would get the message
twice): only a connect error (nothing was sent; the next host is tried) and HTTP 429 / code
1008 (refused) are retried; an answer lost after sending is an AmbiguousWriteError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from provisioner import __version__
from provisioner.errors import AmbiguousWriteError, ApiError, TransportError
from provisioner.rongcloud.responses import (
    OversizedAnswer,
    api_error,
    read_answer,
    read_body,
    retry_after_seconds,
)
from provisioner.rongcloud.signing import REQUEST_ID_HEADER, RongCloudAuth, new_request_id

PUBLISH = "/message/private/publish.json"
MAX_ATTEMPTS = 3
RETRY_BACKOFF = 1.0


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
    with httpx.Client(
        auth=RongCloudAuth(app_key, app_secret),
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": f"provisioner/{__version__}"},
        follow_redirects=False,
        transport=transport,
    ) as client:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            host = hosts[(attempt - 1) % len(hosts)]
            result = _attempt(client, host, form, [app_secret])
            if isinstance(result, str):
                return result
            if attempt == MAX_ATTEMPTS:
                raise result.error
            sleep(result.wait)
    raise AssertionError("unreachable")  # pragma: no cover


class _Retry:
    def __init__(self, error: ApiError | TransportError, wait: float) -> None:
        self.error = error
        self.wait = wait


def _attempt(
    client: httpx.Client, host: str, form: dict[str, str], secrets: list[str]
) -> str | _Retry:
    request_id = new_request_id()
    try:
        response = client.post(host + PUBLISH, data=form, headers={REQUEST_ID_HEADER: request_id})
        body = read_body(response)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        error = TransportError(
            f"could not connect to {host} for {PUBLISH} ({type(exc).__name__})",
            endpoint=PUBLISH,
            hint="check the endpoint in app.yaml and the network",
        )
        return _Retry(error, 0.0)
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
        wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        return _Retry(api_error(PUBLISH, answer), RETRY_BACKOFF if wait is None else wait)
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
