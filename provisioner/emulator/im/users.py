"""``POST /user/getToken.json``: registering a user (step 2 of RongCloud's bot guide, and
RongCloud's own Dify plugin's ``register_user``), and the loopback-only
``GET /_emulator/users`` that lists who registered.

The call goes through the same steps as the bot API (faults, signature, rate limit, bounded
body; see :mod:`~provisioner.emulator.app`). Its body is form-encoded: ``userId`` (1–64
characters, required), ``name`` (at most 128) and ``portraitUri`` (at most 1024), each at most
once; other fields are ignored. It answers ``{"code":200,"userId":…,"token":…}``: a new token
on every call, random text the emulator keeps only as a digest. Registering a user again
updates its name and portrait.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.emulator import codes

# The bot API's steps, shared so that every endpoint behaves the same (see app.py).
from provisioner.emulator.app import EmulatorState, _endpoint, _loopback_only
from provisioner.emulator.im.messages import MessageStore
from provisioner.emulator.validation import parameter_error

GET_TOKEN_PATH = "/user/getToken.json"
USERS_PATH = "/_emulator/users"
LIMITS = {"userId": 64, "name": 128, "portraitUri": 1024}


@dataclass(frozen=True)
class Registration:
    user_id: str
    name: str
    portrait_uri: str


def parse_registration(raw: bytes) -> Registration:
    """The form of a getToken call; Rejection (400 / 1002) naming the first bad field."""
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise parameter_error("body", "must be form-encoded UTF-8") from None
    values = {}
    for field, longest in LIMITS.items():
        given = form.get(field) or [""]
        if len(given) > 1:
            raise parameter_error(field, "must be given once")
        if len(given[0]) > longest:
            raise parameter_error(field, f"must be at most {longest} characters")
        values[field] = given[0]
    if not values["userId"]:
        raise parameter_error("userId", "is required")
    if any(character.isspace() for character in values["userId"]):
        raise parameter_error("userId", "must not contain whitespace")
    return Registration(values["userId"], values["name"], values["portraitUri"])


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def user_routes(state: EmulatorState, messages: MessageStore) -> list[Route]:
    """The getToken endpoint and the users admin endpoint."""
    return [
        Route(GET_TOKEN_PATH, _get_token(state, messages), methods=["POST"]),
        Route(USERS_PATH, _loopback_only(_users(messages)), methods=["GET"]),
    ]


def _get_token(
    state: EmulatorState, messages: MessageStore
) -> Callable[[Request], Awaitable[Response]]:
    def register(app_key: str, user: Registration) -> dict[str, Any]:
        token = secrets.token_urlsafe(48)
        messages.register(app_key, user.user_id, user.name, user.portrait_uri, token_digest(token))
        return {"userId": user.user_id, "token": token}

    return _endpoint(state, register, writes=True, decode=parse_registration)


def _users(messages: MessageStore) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        app_key = request.query_params.get("appKey") or None
        return JSONResponse({"code": codes.CODE_OK, "users": messages.users(app_key)})

    return endpoint
