"""Reading GitHub's failure answers: ``{message, errors, documentation_url}``, typed
errors with hints, and the small header parsers the client uses."""

from __future__ import annotations

from typing import Any

import httpx

from provisioner.errors import GitHubBodyTooLongError, GitHubError

STATUS_HINTS = {
    401: "GitHub refused the token: pass the workflow's token as GITHUB_TOKEN "
    "(github-token input) and check that it has not expired",
    403: "the token lacks a permission: grant `pull-requests: write` (plan and apply "
    "comments) or `issues: write` (drift issue) in the job's permissions; a pull request "
    "from a fork only gets a read-only token",
    404: "check GITHUB_REPOSITORY and the number; a token that cannot see a private "
    "repository also gets 404",
    422: "GitHub refused the request's content; see the message",
}
SERVER_HINT = "GitHub may be having trouble (see githubstatus.com); try again later"
TOO_LONG_HINT = (
    "this is a bug in provisioner: its comments and issues are kept under 65,536 "
    "characters; please report it"
)


def github_error(endpoint: str, answer: httpx.Response, token: str = "") -> GitHubError:
    """The typed error for a failed ``answer`` to ``endpoint`` (``token`` redacted)."""
    detail = message_of(answer)
    errors = _validation_errors(answer)
    if errors:
        detail = f"{detail}: {'; '.join(errors)}" if detail else "; ".join(errors)
    if token:
        detail = detail.replace(token, "(sensitive)")
    request_id = answer.headers.get("x-github-request-id")
    status = answer.status_code
    kind = GitHubBodyTooLongError if status == 422 and "too long" in detail else GitHubError
    hint = TOO_LONG_HINT if kind is GitHubBodyTooLongError else STATUS_HINTS.get(status)
    return kind(
        f"GitHub refused {endpoint} (HTTP {status})"
        + (f": {detail}" if detail else "")
        + f" (request id {request_id})",
        endpoint=endpoint,
        status=status,
        request_id=request_id,
        documentation_url=documentation_url_of(answer),
        hint=hint or (SERVER_HINT if status >= 500 else None),
    )


def json_or_none(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def message_of(answer: httpx.Response) -> str:
    message = _json(answer).get("message")
    return message if isinstance(message, str) else ""


def documentation_url_of(answer: httpx.Response) -> str | None:
    url = _json(answer).get("documentation_url")
    return url if isinstance(url, str) else None


def _validation_errors(answer: httpx.Response) -> list[str]:
    """The ``errors`` of a 422: each one's ``message``, else ``field code``."""
    found: list[str] = []
    for item in _json(answer).get("errors") or []:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            text = item.get("message") or " ".join(
                str(item[key]) for key in ("resource", "field", "code") if item.get(key)
            )
            found.append(str(text))
    return found


def endpoint_name(method: str, path: str) -> str:
    """``METHOD /path`` for messages: numbers and SHAs kept, no host, no query."""
    return f"{method} /{path.lstrip('/')}"


def seconds_of(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds == seconds else None


def integer_of(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
