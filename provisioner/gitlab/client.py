"""A small GitLab REST client (API v4): one ``httpx.Client``, retrying, paginating,
rate-limit aware, on the skeleton of :mod:`provisioner.http`.

Only the endpoints the GitOps loop needs, always under the numeric project id
(``CI_PROJECT_ID``: a proxy that decodes ``%2F`` breaks path-encoded ids). Two tokens:

* ``token`` (``PROVISIONER_GITLAB_TOKEN``, a project access token) as ``PRIVATE-TOKEN`` for
  everything, and the only one that can write notes and issues or call ``GET /user``;
* ``job_token`` (``CI_JOB_TOKEN``) as ``JOB-TOKEN`` for the reads GitLab allows it (a merge
  request, its notes, the merge requests of a commit), when it is given.

Neither is ever part of a message, a log record or ``repr``. Retries (``sleep``/``clock``
are seams): a connect error always; reads (GET) and edits (PUT) also on timeouts, dropped
connections and 5xx; a create (POST) that may have reached GitLab never. A 429 is a
refusal, safe to repeat even for a create: wait ``Retry-After`` (Rack::Attack), else until
``RateLimit-Reset``, else (the notes and issues limits answer 429 with no header)
:data:`APPLICATION_LIMIT_WAIT`; a wait longer than ``max_wait`` fails at once, naming it.

Listings ask ``per_page=100`` and follow ``Link: rel="next"`` (never to another origin),
else ``x-next-page``.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from provisioner.errors import ConfigError, GitLabError, GitLabRateLimitedError, TransportError
from provisioner.gitlab.models import Issue, MergeRequest, Note, User
from provisioner.gitlab.responses import (
    endpoint_name,
    gitlab_error,
    json_or_none,
    number_of,
)
from provisioner.http import NOT_SENT, ApiClient, Retry, RetryPolicy, http_client

PER_PAGE = 100
"""GitLab's maximum ``per_page``."""
MAX_PAGES = 100
Thread = Literal["merge_requests", "issues"]
"""Where notes live: a merge request's or an issue's."""

APPLICATION_LIMIT_WAIT = 20.0
"""The wait after a 429 without any header (GitLab's notes and issues limits, counted per
minute): three waits span a whole window."""
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_JOB = "provisioner_job_token"
_Model = TypeVar("_Model", bound=BaseModel)


class _Tokens(httpx.Auth):
    """``PRIVATE-TOKEN``, or ``JOB-TOKEN`` for a request marked as a job-token read."""

    def __init__(self, token: str, job_token: str) -> None:
        self._token = token
        self._job_token = job_token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.extensions.get(_JOB) and self._job_token:
            request.headers["JOB-TOKEN"] = self._job_token
        elif self._token:
            request.headers["PRIVATE-TOKEN"] = self._token
        yield request

    def __repr__(self) -> str:
        return "_Tokens((sensitive))"


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """Verify against ``ca_bundle`` (``--ca-bundle``, ``CI_SERVER_TLS_CA_FILE``) when
    given, else the default bundle; there is no way to turn verification off."""
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot read the CA bundle {ca_bundle}: {getattr(exc, 'strerror', None) or exc}",
            hint="give --ca-bundle (or the runner's CI_SERVER_TLS_CA_FILE) a PEM file of the"
            " certificates that sign your GitLab's",
        ) from exc


class GitLabClient(ApiClient):
    """GitLab REST client for one project's merge requests, notes and issues."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        project_id: str,
        job_token: str = "",
        ca_bundle: Path | None = None,
        timeout: float = 15.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not project_id.isdigit():
            raise ConfigError(
                f"CI_PROJECT_ID is not a numeric project id: {project_id!r}",
                hint="the runner sets CI_PROJECT_ID; provisioner uses numeric ids only",
            )
        self._secrets = (token, job_token)
        self._base = httpx.URL(api_url.rstrip("/") + "/")
        self._project = f"projects/{project_id}"
        self._max_wait = max_wait
        self._clock = clock
        self._retry = RetryPolicy(
            attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max, sleep=sleep
        )
        self.requests_sent = 0
        super().__init__(
            http_client(
                auth=_Tokens(token, job_token),
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                headers={"Accept": "application/json"},
                transport=transport,
                verify=tls_context(ca_bundle),
            )
        )

    # -- the API ---------------------------------------------------------------------------

    def me(self) -> User:
        """The token's own user (``GET /user``: not with a job token)."""
        return self._one(User, "GET", "user")

    def merge_request(self, iid: int) -> MergeRequest:
        return self._one(MergeRequest, "GET", f"{self._project}/merge_requests/{iid}", job=True)

    def commit_merge_requests(self, sha: str) -> list[MergeRequest]:
        """The merge requests GitLab associates with commit ``sha`` (open ones too)."""
        path = f"{self._project}/repository/commits/{sha}/merge_requests"
        return self._list(MergeRequest, path, job=True)

    def issue(self, iid: int) -> Issue:
        return self._one(Issue, "GET", f"{self._project}/issues/{iid}")

    def notes(self, thread: Thread, iid: int) -> list[Note]:
        """Every note a person or a token wrote on the merge request or issue ``iid``, oldest
        first (GitLab's default is newest first; ``system`` notes are left out)."""
        path = f"{self._project}/{thread}/{iid}/notes"
        params = {"sort": "asc", "order_by": "created_at"}
        notes = self._list(Note, path, params, job=thread == "merge_requests")
        return sorted((note for note in notes if not note.system), key=lambda note: note.id)

    def create_note(self, thread: Thread, iid: int, body: str) -> Note:
        path = f"{self._project}/{thread}/{iid}/notes"
        return self._one(Note, "POST", path, {"body": body})

    def update_note(self, thread: Thread, iid: int, note_id: int, body: str) -> Note:
        path = f"{self._project}/{thread}/{iid}/notes/{note_id}"
        return self._one(Note, "PUT", path, {"body": body})

    def issues(self, *, labels: str, author_id: int, state: str = "all") -> list[Issue]:
        """Issues carrying ``labels`` (comma-separated, all required) by ``author_id``."""
        params = {"labels": labels, "author_id": str(author_id), "state": state}
        return self._list(Issue, f"{self._project}/issues", params)

    def create_issue(self, *, title: str, description: str, labels: str) -> Issue:
        payload = {"title": title, "description": description, "labels": labels}
        return self._one(Issue, "POST", f"{self._project}/issues", payload)

    def update_issue(self, iid: int, **fields: str) -> Issue:
        """Change only ``fields`` (``title``, ``description``, ``state_event``:
        ``close``/``reopen``, ``add_labels``) of issue ``iid``."""
        return self._one(Issue, "PUT", f"{self._project}/issues/{iid}", dict(fields))

    @property
    def api_url(self) -> str:
        return str(self._base).rstrip("/")

    def __repr__(self) -> str:
        return f"GitLabClient(api_url={self.api_url!r})"

    # -- requests and retries --------------------------------------------------------------

    def _one(
        self, model: type[_Model], method: str, path: str, payload: Any = None, job: bool = False
    ) -> _Model:
        answer = self._request(method, self._base.join(path), json=payload, job=job)
        return self._parse(model, json_or_none(answer), endpoint_name(method, path))

    def _list(
        self,
        model: type[_Model],
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        job: bool = False,
    ) -> list[_Model]:
        endpoint = endpoint_name("GET", path)
        url = self._base.join(path)
        query: dict[str, str] | None = {**(params or {}), "per_page": str(PER_PAGE)}
        items: list[_Model] = []
        for _ in range(MAX_PAGES):
            answer = self._request("GET", url, params=query, job=job)
            page = json_or_none(answer)
            if not isinstance(page, list):
                raise GitLabError(
                    f"GitLab answered {endpoint} with something other than a list",
                    endpoint=endpoint,
                    status=answer.status_code,
                    hint="check CI_API_V4_URL: it must be the API's address (…/api/v4)",
                )
            items += [self._parse(model, item, endpoint) for item in page]
            following = self._next_page(answer, url, query, endpoint)
            if following is None:
                return items
            url, query = following
        raise GitLabError(
            f"{endpoint} had more than {MAX_PAGES} pages", endpoint=endpoint, status=None
        )

    def _next_page(
        self, answer: httpx.Response, url: httpx.URL, query: dict[str, str] | None, endpoint: str
    ) -> tuple[httpx.URL, dict[str, str] | None] | None:
        """``Link: rel="next"`` (same origin and API path only), else ``x-next-page``."""
        link = answer.links.get("next")
        if link is not None:
            following = httpx.URL(link["url"])
            same = (following.scheme, following.host, following.port) == (
                self._base.scheme,
                self._base.host,
                self._base.port,
            )
            if not same or not following.path.startswith(self._base.path):
                raise GitLabError(
                    "GitLab's pagination link points outside the API; not following it",
                    endpoint=endpoint,
                    status=answer.status_code,
                    hint="check CI_API_V4_URL: it must be the API's own address",
                )
            return following, None
        page = answer.headers.get("x-next-page", "").strip()
        if page.isdigit():
            return url.copy_with(query=None), {**dict(url.params), **(query or {}), "page": page}
        return None

    def _request(
        self,
        method: str,
        url: httpx.URL,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        job: bool = False,
    ) -> httpx.Response:
        endpoint = endpoint_name(method, url.path.removeprefix(self._base.path))
        return self._retry.call(lambda: self._attempt(method, url, endpoint, params, json, job))

    def _attempt(
        self,
        method: str,
        url: httpx.URL,
        endpoint: str,
        params: Mapping[str, str] | None,
        json: Any,
        job: bool,
    ) -> httpx.Response:
        self.requests_sent += 1
        try:
            answer = self._http.request(
                method, url, params=params, json=json, extensions={_JOB: job}
            )
        except httpx.RequestError as exc:
            raise self._transport_failure(method, endpoint, exc) from exc
        if answer.is_success:
            return answer
        if answer.status_code == 429:
            raise self._limited(endpoint, answer)
        error = gitlab_error(method, endpoint, answer, self._secrets)
        if answer.status_code >= 500 and method in _IDEMPOTENT:
            raise Retry(error)
        raise error

    def _transport_failure(self, method: str, endpoint: str, exc: httpx.RequestError) -> Exception:
        what = type(exc).__name__
        hint = "check CI_API_V4_URL, the network and NO_PROXY; GitLab may be unreachable"
        if isinstance(exc, NOT_SENT):
            message = f"could not connect to GitLab for {endpoint} ({what})"
            return Retry(TransportError(message, endpoint=endpoint, hint=hint))
        if method in _IDEMPOTENT:
            message = f"GitLab gave no answer to {endpoint} ({what})"
            return Retry(TransportError(message, endpoint=endpoint, hint=hint))
        return TransportError(
            f"GitLab gave no answer to {endpoint} ({what}); it may or may not have been done",
            endpoint=endpoint,
            hint="look at the merge request or issue; running the job again edits what it made",
        )

    def _limited(self, endpoint: str, answer: httpx.Response) -> Exception:
        """A 429: wait ``Retry-After``, else until ``RateLimit-Reset``, else back off."""
        headers = answer.headers
        wait = number_of(headers.get("retry-after"))
        reset = number_of(headers.get("ratelimit-reset"))
        if wait is None and reset is not None:
            wait = max(0.0, reset - self._clock()) + 1.0
        when = f"in {wait:.0f} s" if wait is not None else "within a minute"
        wait = APPLICATION_LIMIT_WAIT if wait is None else wait
        error = GitLabRateLimitedError(
            f"GitLab's rate limit stopped {endpoint} (HTTP 429"
            + (f", {headers['ratelimit-name']}" if "ratelimit-name" in headers else "")
            + f"); it lifts {when}",
            endpoint=endpoint,
            status=429,
            hint="the loop makes a handful of calls per run; ask your GitLab admin to exempt the"
            " token's bot user (GITLAB_THROTTLE_USER_ALLOWLIST) or try again later",
        )
        if wait > self._max_wait:
            return error
        return Retry(error, wait=wait)

    def _parse(self, model: type[_Model], data: Any, endpoint: str) -> _Model:
        try:
            return model.model_validate(data)
        except ValidationError:
            raise GitLabError(
                f"GitLab answered {endpoint} with a body of unexpected shape",
                endpoint=endpoint,
                status=None,
                hint="check CI_API_V4_URL: it must be a GitLab API v4",
            ) from None
