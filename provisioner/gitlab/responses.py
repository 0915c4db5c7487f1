"""Reading GitLab's failure answers: ``{"message": "..."}`` or ``{"message": {field:
[...]}}`` (or a plain-text body, as Rack::Attack's 429 ``Retry later``), typed errors with
hints, and the rate-limit headers (``RateLimit-*``, ``Retry-After``)."""

from __future__ import annotations

from typing import Any

import httpx

from provisioner.errors import GitLabError

STATUS_HINTS = {
    400: "GitLab refused the request's content; see the message",
    401: "GitLab refused the token: set PROVISIONER_GITLAB_TOKEN to a project access token"
    " that has not expired (they expire within a year)",
    403: "the token's role may not do this: give the project access token the Reporter role"
    " (notes and issues) and the `api` scope",
    409: "GitLab reports a conflict; see the message",
}
WRITE_404_HINT = (
    "GitLab answers 404 to a write the token may not make: CI_JOB_TOKEN cannot post notes or"
    " issues, so set PROVISIONER_GITLAB_TOKEN (a project access token of this project, role"
    " Reporter or more, scope `api`); also check CI_PROJECT_ID and the number"
)
READ_404_HINT = (
    "check CI_PROJECT_ID and the number; GitLab also answers 404 when the token cannot see the"
    " project (CI_JOB_TOKEN may read merge requests and their notes only)"
)
SERVER_HINT = "GitLab may be having trouble; try again later"
TOO_LONG_HINT = (
    "this is a bug in provisioner: its notes stay under 1,000,000 characters and issue"
    " descriptions under 1,048,576; please report it"
)


def gitlab_error(
    method: str, endpoint: str, answer: httpx.Response, secrets: tuple[str, ...] = ()
) -> GitLabError:
    """The typed error for a failed ``answer`` to ``endpoint``, with every one of
    ``secrets`` (the tokens) redacted from GitLab's message."""
    detail = message_of(answer)
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "(sensitive)")
    status = answer.status_code
    if status == 404:
        hint: str | None = READ_404_HINT if method == "GET" else WRITE_404_HINT
    elif status == 400 and "too long" in detail:
        hint = TOO_LONG_HINT
    else:
        hint = STATUS_HINTS.get(status) or (SERVER_HINT if status >= 500 else None)
    return GitLabError(
        f"GitLab refused {endpoint} (HTTP {status})" + (f": {detail}" if detail else ""),
        endpoint=endpoint,
        status=status,
        hint=hint,
    )


def json_or_none(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def message_of(answer: httpx.Response) -> str:
    """GitLab's ``message`` as one line: a string, or an object of field → list of
    messages (``description is too long …``); else the start of a plain-text body."""
    data = json_or_none(answer)
    if not isinstance(data, dict):
        return " ".join(answer.text.split())[:200] if answer.text else ""
    message = data.get("message", data.get("error", ""))
    if isinstance(message, dict):
        parts = []
        for key, value in message.items():
            items = value if isinstance(value, list) else [value]
            parts += [f"{key} {item}" if key != "error" else str(item) for item in items]
        return "; ".join(parts)
    return " ".join(str(message).split())


def endpoint_name(method: str, path: str) -> str:
    """``METHOD /path`` for messages: ids and SHAs kept, no host, no query."""
    return f"{method} /{path.lstrip('/')}"


def number_of(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and number == number else None
