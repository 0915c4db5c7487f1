"""GitLab's Terraform state API, as the gitlab backend uses it (``/projects/:id/terraform/
state/:name``, its ``/lock`` and ``/versions/:serial``), over one ``httpx`` client.

Tokens: a job token (``CI_JOB_TOKEN``) is sent as HTTP basic auth, user ``gitlab-ci-token``,
the only way GitLab takes a job token on these routes; any other token (a project, group or
personal access token in ``PROVISIONER_GITLAB_TOKEN``) as ``PRIVATE-TOKEN``. Reads are retried
on 5xx, 429 and network failures; a write is repeated only when it never left, and a write
whose answer was lost is looked up among the state's versions. Every failure is a StateError
saying what to do; no token ever reaches a message.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import httpx

from provisioner.errors import StateError
from provisioner.http import (
    NOT_SENT,
    ApiClient,
    Retry,
    RetryPolicy,
    http_client,
    retry_after,
    shared_ssl_context,
)

TokenKind = Literal["job", "access"]
JOB_TOKEN_USER = "gitlab-ci-token"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_BODY = 16 * 1024 * 1024
"""Largest answer read (a state is at most MAX_STATE_BYTES; lock answers are small)."""
ROLE_HINT = (
    "reading needs the Developer role; locking and writing need the Maintainer role (a"
    " Maintainer-role project access token in PROVISIONER_GITLAB_TOKEN, a protected variable"
    " for the apply job)"
)


@dataclass(frozen=True)
class LockAnswer:
    """GitLab's answer to a lock request: whether it was granted, and the lock it holds
    (``ID``, the ``Who`` username of the token that took it, ``Created``)."""

    granted: bool
    lock_id: str
    who: str
    created: str


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification for GitLab: the PEM file ``ca_file`` (a self-signed or internal CA),
    else the system's defaults (httpx's)."""
    if not ca_file:
        return shared_ssl_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise StateError(
            f"cannot load the CA bundle {ca_file}: {getattr(exc, 'strerror', None) or exc}",
            hint="state.caBundle (or CI_SERVER_TLS_CA_FILE) must name a readable PEM file",
        ) from None


class GitLabStateApi(ApiClient):
    """The Terraform states of project ``project`` at ``api_url`` (``…/api/v4``)."""

    def __init__(
        self,
        api_url: str,
        project: str,
        token: str,
        kind: TokenKind,
        *,
        ca_file: str | None = None,
        transport: httpx.BaseTransport | None = None,
        attempts: int = 4,
        backoff_base: float = 0.5,
    ) -> None:
        if kind == "job":
            auth: httpx.Auth | None = httpx.BasicAuth(JOB_TOKEN_USER, token)
            headers = {}
        else:
            auth, headers = None, {"PRIVATE-TOKEN": token}
        super().__init__(
            http_client(
                timeout=TIMEOUT,
                transport=transport,
                headers=headers,
                auth=auth,
                verify=ssl_context(ca_file),
            )
        )
        self.base = f"{api_url.rstrip('/')}/projects/{quote(project, safe='')}/terraform/state"
        self.project = project
        self.kind = kind
        self.where = f"GitLab project {project}"
        self._policy = RetryPolicy(attempts=attempts, backoff_base=backoff_base, backoff_max=8.0)

    def __repr__(self) -> str:
        return f"GitLabStateApi(project={self.project!r}, kind={self.kind!r})"

    def url(self, name: str, suffix: str = "") -> str:
        return f"{self.base}/{quote(name, safe='')}{suffix}"

    # --- the calls --------------------------------------------------------------------

    def get_state(self, name: str, doing: str) -> bytes | None:
        """The latest version of state ``name`` (None: no state, or one without versions)."""
        return self._get(self.url(name), doing)

    def get_version(self, name: str, serial: int, doing: str) -> bytes | None:
        """Version ``serial`` of state ``name`` (None when there is none)."""
        return self._get(self.url(name, f"/versions/{serial}"), doing)

    def post_state(self, name: str, document: bytes, lock_id: str | None, doing: str) -> int:
        """Store ``document`` as the newest version: 200 when stored, 409 when the lock is
        not ``lock_id`` (None: the state must be unlocked), 422 when the version exists."""
        params = {"ID": lock_id} if lock_id is not None else None
        response = self._send(
            "POST",
            self.url(name),
            doing,
            content=document,
            params=params,
            headers={"Content-Type": "application/json"},
        )
        if response.status_code in (200, 204, 409, 422):
            return response.status_code
        raise self._failure(response, doing)

    def lock(
        self, name: str, lock_id: str, info: dict[str, str], doing: str, *, may_refuse: bool = False
    ) -> LockAnswer | None:
        """Ask for the lock of state ``name`` under ``lock_id``; the holder either way (None:
        the token's role may not lock, when ``may_refuse``)."""
        body = {"ID": lock_id, **info}
        response = self._send("POST", self.url(name, "/lock"), doing, json=body)
        if response.status_code == 403 and may_refuse:
            return None
        if response.status_code not in (200, 409):
            raise self._failure(response, doing)
        try:
            answer = json.loads(response.content)
            held = LockAnswer(
                granted=response.status_code == 200,
                lock_id=str(answer.get("ID") or ""),
                who=str(answer.get("Who") or "an unknown user"),
                created=str(answer.get("Created") or "an unknown time"),
            )
        except (ValueError, AttributeError):
            raise StateError(
                f"{self.where}: {doing}: GitLab's answer to the lock request is not the lock's"
                " JSON",
                hint="check that state.apiUrl (or CI_API_V4_URL) is GitLab's /api/v4",
            ) from None
        return held

    def unlock(self, name: str, lock_id: str | None, doing: str) -> bool:
        """Remove the lock ``lock_id`` (None: whichever lock, GitLab's force unlock); False
        when the state holds another lock (409)."""
        params = {"ID": lock_id} if lock_id is not None else None
        response = self._send("DELETE", self.url(name, "/lock"), doing, params=params)
        if response.status_code in (200, 204):
            return True
        if response.status_code == 409:
            return False
        raise self._failure(response, doing)

    # --- plumbing ---------------------------------------------------------------------

    def _get(self, url: str, doing: str) -> bytes | None:
        response = self._send("GET", url, doing)
        if response.status_code == 204:
            return None
        if response.status_code == 404 and "project" not in _message(response).lower():
            return None
        if response.status_code != 200:
            raise self._failure(response, doing)
        return response.content

    def _send(self, method: str, url: str, doing: str, **kwargs: object) -> httpx.Response:
        """One call, retried where that is safe (see the module docstring)."""

        def attempt() -> httpx.Response:
            try:
                response = self._http.request(method, url, **kwargs)  # type: ignore[arg-type]
            except NOT_SENT as exc:
                raise Retry(self._network(exc, doing)) from None
            except ssl.SSLError as exc:
                raise self._tls(exc, doing) from None
            except httpx.ConnectError as exc:  # pragma: no cover - NOT_SENT holds it
                raise self._network(exc, doing) from None
            except httpx.HTTPError as exc:
                if method == "GET":
                    raise Retry(self._network(exc, doing)) from None
                raise self._network(exc, doing) from None
            if response.status_code == 429 or (method == "GET" and response.status_code >= 500):
                raise Retry(self._failure(response, doing), wait=retry_after(response, time.time()))
            if len(response.content) > MAX_BODY:
                raise StateError(f"{self.where}: {doing}: GitLab's answer is too large")
            return response

        return self._policy.call(attempt)

    def _network(self, exc: Exception, doing: str) -> StateError:
        if _is_tls(exc):
            return self._tls(exc, doing)
        return StateError(
            f"{self.where}: {doing}: cannot reach GitLab ({type(exc).__name__})",
            hint="check state.apiUrl (or CI_API_V4_URL), the network and any proxy"
            " (NO_PROXY for an intranet GitLab)",
        )

    def _tls(self, exc: Exception, doing: str) -> StateError:
        return StateError(
            f"{self.where}: {doing}: GitLab's certificate could not be verified",
            hint="for a self-signed or internal CA, set state.caBundle to its PEM file (GitLab"
            " CI sets CI_SERVER_TLS_CA_FILE when the runner has tls-ca-file)",
        )

    def _failure(self, response: httpx.Response, doing: str) -> StateError:
        status, message = response.status_code, _message(response)
        what = f"{self.where}: {doing}: GitLab answered {status} {message}".rstrip()
        if status == 401:
            return StateError(
                what,
                hint="the token was refused: check PROVISIONER_GITLAB_TOKEN (access tokens"
                " expire) or, in a job, CI_JOB_TOKEN",
            )
        if status == 403:
            return StateError(what, hint=f"the token's role may not do this: {ROLE_HINT}")
        if status == 404:
            return StateError(
                what,
                hint="check state.project (or CI_PROJECT_ID), that the project's"
                " Infrastructure features are on, and the token's access: GitLab answers 404"
                " where access is missing",
            )
        if status == 413:
            return StateError(
                what,
                hint="the state is larger than the instance's Terraform state size limit"
                " (Admin Area, max_terraform_state_size_bytes)",
            )
        return StateError(what, hint="GitLab may be down or overloaded: try again later")


def _message(response: httpx.Response) -> str:
    """The ``message`` (or ``error``) of a GitLab error answer, shortened and printable."""
    try:
        body = json.loads(response.content[:4096])
    except ValueError:
        return ""
    value = body.get("message", body.get("error", "")) if isinstance(body, dict) else ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return f"({cleaned[:200]})" if cleaned else ""


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
