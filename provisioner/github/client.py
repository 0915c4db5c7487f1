"""A small GitHub REST client: one ``httpx.Client``, retrying, paginating, rate-limit aware.

Only the endpoints the GitOps loop needs (pull requests of a commit, a pull request, issue
comments, issues, labels). Every request sends ``Accept: application/vnd.github+json``,
``X-GitHub-Api-Version: 2022-11-28``, a User-Agent and the token as a bearer token; the token
is never part of a message, a log record or ``repr``.

Retry policy (the skeleton of :mod:`provisioner.http`, under the RongCloud and Dify clients
too; ``sleep``/``clock`` are seams):

* a connect error (nothing was sent) is retried for every call, backing off with jitter;
* a read (GET) or an edit (PATCH, idempotent) is also retried on timeouts, dropped
  connections and 5xx answers;
* a create (POST) that may have reached GitHub (timeout, dropped connection, 5xx) is never
  repeated: repeating it could post a second comment or issue;
* primary rate limit (403/429 with ``x-ratelimit-remaining: 0``): wait until
  ``x-ratelimit-reset``, when that is at most ``max_wait`` seconds away, then retry; else
  GitHubRateLimitedError at once, naming when the limit resets;
* secondary rate limit (403/429 with ``retry-after``, or a message naming a secondary rate
  limit): wait ``retry-after`` (else a minute, as GitHub's docs ask), at most ``max_wait``;
* anything else that is not 2xx raises GitHubError at once (422 "body is too long":
  GitHubBodyTooLongError).

Pagination follows ``Link: <...>; rel="next"`` (httpx's ``Response.links``) and never
leaves the API's origin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from provisioner.errors import ConfigError, GitHubError, GitHubRateLimitedError, TransportError
from provisioner.github.models import (
    Account,
    Branch,
    Comment,
    Issue,
    Label,
    PullRequest,
    RateLimit,
    Repo,
    RepoRef,
)
from provisioner.github.responses import (
    documentation_url_of,
    endpoint_name,
    github_error,
    integer_of,
    json_or_none,
    message_of,
    seconds_of,
)
from provisioner.http import NOT_SENT, ApiClient, Retry, RetryPolicy, http_client

__all__ = [
    "Account",
    "Branch",
    "Comment",
    "GitHubClient",
    "Issue",
    "Label",
    "PullRequest",
    "RateLimit",
    "Repo",
    "RepoRef",
]

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
MAX_BODY_CHARACTERS = 65_536
"""GitHub's limit for a comment or issue body (code points)."""
PER_PAGE = 100
MAX_PAGES = 100
"""At most this many pages (10,000 items) per listing."""
SECONDARY_DEFAULT_WAIT = 60.0
"""GitHub's docs: without ``retry-after``, wait at least a minute after a secondary limit."""

logger = logging.getLogger("provisioner.github")

_IDEMPOTENT = frozenset({"GET", "PATCH", "PUT", "DELETE"})
_Model = TypeVar("_Model", bound=BaseModel)


# --- the client -------------------------------------------------------------------------------


class _TokenAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; the token stays out of every repr."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "_TokenAuth(token=(sensitive))"


class GitHubClient(ApiClient):
    """GitHub REST client for the endpoints of the GitOps loop; a context manager.

    ``api_url`` is ``GITHUB_API_URL`` (``https://api.github.com``, or
    ``https://HOST/api/v3`` on GitHub Enterprise Server). ``token`` comes from the caller
    (read from the environment, never a flag). ``max_wait`` bounds every single wait for a
    rate limit; ``sleep``/``clock`` (epoch seconds) and ``transport`` are seams for tests.
    """

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 15.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_wait: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise ConfigError(
                "the GitHub token is empty",
                hint="set GITHUB_TOKEN in the step's env: GITHUB_TOKEN: ${{ github.token }}",
            )
        if max_attempts < 1 or timeout <= 0 or max_wait < 0:
            raise ConfigError("max_attempts and timeout must be positive, max_wait not negative")
        self._token = token
        self._base = httpx.URL(api_url.rstrip("/") + "/")
        self._max_wait = max_wait
        self._retry = RetryPolicy(
            attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max, sleep=sleep
        )
        self._clock = clock
        self.requests_sent = 0
        """Every HTTP request sent (retries included): the GitHub budget this client used."""
        self.rate_limit = RateLimit(None, None, None, None)
        super().__init__(
            http_client(
                auth=_TokenAuth(token),
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                headers={"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION},
                transport=transport,
            )
        )

    # -- the API ---------------------------------------------------------------------------

    def pulls_for_commit(self, repo: Repo, sha: str) -> list[PullRequest]:
        """The pull requests associated with commit ``sha`` (merged ones included)."""
        return self._list(PullRequest, f"repos/{repo}/commits/{sha}/pulls")

    def get_pull(self, repo: Repo, number: int) -> PullRequest:
        return self._one(PullRequest, "GET", f"repos/{repo}/pulls/{number}")

    def get_issue(self, repo: Repo, number: int) -> Issue:
        """Issue (or pull request) ``number``, with its body and author."""
        return self._one(Issue, "GET", f"repos/{repo}/issues/{number}")

    def issue_comments(self, repo: Repo, number: int) -> list[Comment]:
        """Every comment of issue or pull request ``number``, oldest first."""
        return self._list(Comment, f"repos/{repo}/issues/{number}/comments")

    def create_comment(self, repo: Repo, number: int, body: str) -> Comment:
        path = f"repos/{repo}/issues/{number}/comments"
        return self._one(Comment, "POST", path, {"body": body})

    def update_comment(self, repo: Repo, comment_id: int, body: str) -> Comment:
        path = f"repos/{repo}/issues/comments/{comment_id}"
        return self._one(Comment, "PATCH", path, {"body": body})

    def issues(
        self,
        repo: Repo,
        *,
        labels: Sequence[str] = (),
        state: str = "open",
        creator: str | None = None,
    ) -> list[Issue]:
        """Issues (never pull requests) with every one of ``labels``, in ``state``
        (``open``, ``closed`` or ``all``), newest first."""
        params: dict[str, str] = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        if creator:
            params["creator"] = creator
        issues = self._list(Issue, f"repos/{repo}/issues", params)
        return [issue for issue in issues if not issue.is_pull_request]

    def create_issue(
        self, repo: Repo, *, title: str, body: str, labels: Sequence[str] = ()
    ) -> Issue:
        payload = {"title": title, "body": body, "labels": list(labels)}
        return self._one(Issue, "POST", f"repos/{repo}/issues", payload)

    def update_issue(
        self,
        repo: Repo,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        state_reason: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> Issue:
        """Change only the given fields of issue ``number``."""
        given = {"title": title, "body": body, "state": state, "state_reason": state_reason}
        payload: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        if labels is not None:
            payload["labels"] = list(labels)
        return self._one(Issue, "PATCH", f"repos/{repo}/issues/{number}", payload)

    def issue_labels(self, repo: Repo, number: int) -> list[Label]:
        return self._list(Label, f"repos/{repo}/issues/{number}/labels")

    def create_label(self, repo: Repo, name: str, color: str, description: str) -> bool:
        """A repository label; False when one of that name exists (422 ``already_exists``)."""
        payload = {"name": name, "color": color, "description": description}
        try:
            self._one(Label, "POST", f"repos/{repo}/labels", payload)
        except GitHubError as exc:
            if exc.status != 422 or "already_exists" not in exc.message:
                raise
            return False
        return True

    def add_labels(self, repo: Repo, number: int, names: Sequence[str]) -> None:
        self._request("POST", f"repos/{repo}/issues/{number}/labels", json={"labels": [*names]})

    def remove_label(self, repo: Repo, number: int, name: str) -> bool:
        """Take ``name`` off issue ``number``; False when it does not carry it (404)."""
        try:
            self._request("DELETE", f"repos/{repo}/issues/{number}/labels/{quote(name, safe='')}")
        except GitHubError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    @property
    def api_url(self) -> str:
        return str(self._base).rstrip("/")

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r})"

    # -- requests and retries --------------------------------------------------------------

    def _one(self, model: type[_Model], method: str, path: str, payload: Any = None) -> _Model:
        answer = self._request(method, path, json=payload)
        return self._parse(model, json_or_none(answer), endpoint_name(method, path))

    def _list(
        self, model: type[_Model], path: str, params: Mapping[str, str] | None = None
    ) -> list[_Model]:
        endpoint = endpoint_name("GET", path)
        return [self._parse(model, item, endpoint) for item in self._paginate(path, params)]

    def _paginate(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Every item of a listing, following ``Link: rel="next"`` (``per_page`` 100)."""
        url: httpx.URL | str = path
        query: dict[str, str] | None = {**(params or {}), "per_page": str(PER_PAGE)}
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            answer = self._request("GET", url, params=query)
            page = json_or_none(answer)
            if not isinstance(page, list):
                raise self._odd_answer(answer, "a list")
            items.extend(page)
            next_url = self._next_page(answer)
            if next_url is None:
                return items
            url, query = next_url, None
        raise GitHubError(
            f"{endpoint_name('GET', path)} had more than {MAX_PAGES} pages",
            endpoint=endpoint_name("GET", path),
            status=None,
            hint="too many items to read; this is unexpected, please report it",
        )

    def _next_page(self, answer: httpx.Response) -> httpx.URL | None:
        link = answer.links.get("next")
        if link is None:
            return None
        url = httpx.URL(link["url"])
        same_origin = (url.scheme, url.host, url.port) == (
            self._base.scheme,
            self._base.host,
            self._base.port,
        )
        if not same_origin or not url.path.startswith(self._base.path):
            raise GitHubError(
                "GitHub's pagination link points outside the API; not following it",
                endpoint=endpoint_name("GET", answer.request.url.path),
                status=answer.status_code,
                request_id=answer.headers.get("x-github-request-id"),
                hint="check GITHUB_API_URL: it must be the API's own address",
            )
        return url

    def _request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One logical call under the retry policy; the 2xx answer."""
        target = url if isinstance(url, httpx.URL) else self._base.join(url)
        endpoint = endpoint_name(method, target.path)
        return self._retry.call(lambda: self._attempt(method, target, endpoint, params, json))

    def _attempt(
        self,
        method: str,
        url: httpx.URL,
        endpoint: str,
        params: Mapping[str, str] | None,
        json: Any,
    ) -> httpx.Response:
        self.requests_sent += 1
        try:
            answer = self._http.request(method, url, params=params, json=json)
        except httpx.RequestError as exc:
            raise self._transport_failure(method, endpoint, exc) from exc
        self._note_rate_limit(answer)
        logger.debug(
            "%s: HTTP %d, request id %s, %s requests left",
            endpoint,
            answer.status_code,
            answer.headers.get("x-github-request-id"),
            self.rate_limit.remaining,
        )
        if answer.is_success:
            return answer
        raise self._failure(method, endpoint, answer)

    def _transport_failure(self, method: str, endpoint: str, exc: httpx.RequestError) -> Exception:
        what = type(exc).__name__
        if isinstance(exc, NOT_SENT):
            error = TransportError(
                f"could not connect to GitHub for {endpoint} ({what})",
                endpoint=endpoint,
                hint="check GITHUB_API_URL and the network; GitHub may be unreachable",
            )
            return Retry(error)
        if method in _IDEMPOTENT:
            error = TransportError(
                f"GitHub gave no answer to {endpoint} ({what})",
                endpoint=endpoint,
                hint="GitHub may be slow or down; try again later",
            )
            return Retry(error)
        return TransportError(
            f"GitHub gave no answer to {endpoint} ({what}); it may or may not have been done",
            endpoint=endpoint,
            hint="look at the pull request or issue; running the job again edits what it made",
        )

    def _failure(self, method: str, endpoint: str, answer: httpx.Response) -> Exception:
        """The error (retryable or final) that a non-2xx answer means."""
        limited = self._rate_limited(endpoint, answer)
        if limited is not None:
            return limited
        error = github_error(endpoint, answer, self._token)
        if answer.status_code >= 500 and method in _IDEMPOTENT:
            return Retry(error)
        return error

    def _rate_limited(self, endpoint: str, answer: httpx.Response) -> Exception | None:
        """A retryable failure or GitHubRateLimitedError for a rate-limit answer, else None."""
        if answer.status_code not in (403, 429):
            return None
        headers = answer.headers
        message = message_of(answer)
        retry_after = seconds_of(headers.get("retry-after"))
        if headers.get("x-ratelimit-remaining") == "0" and retry_after is None:
            reset = seconds_of(headers.get("x-ratelimit-reset"))
            wait = max(0.0, reset - self._clock()) + 1.0 if reset is not None else None
            return self._limited(endpoint, answer, "primary", wait)
        if retry_after is not None or "secondary rate limit" in message.lower():
            wait = retry_after if retry_after is not None else SECONDARY_DEFAULT_WAIT
            return self._limited(endpoint, answer, "secondary", wait)
        return None

    def _limited(
        self, endpoint: str, answer: httpx.Response, kind: str, wait: float | None
    ) -> Exception:
        when = f"in {wait:.0f} s" if wait is not None else "later"
        error = GitHubRateLimitedError(
            f"GitHub's {kind} rate limit stopped {endpoint} (HTTP {answer.status_code}); it "
            f"lifts {when} (request id {answer.headers.get('x-github-request-id')})",
            endpoint=endpoint,
            status=answer.status_code,
            request_id=answer.headers.get("x-github-request-id"),
            documentation_url=documentation_url_of(answer),
            hint="the workflow's token allows 1,000 requests an hour per repository and about "
            "80 content-creating requests a minute; run fewer jobs at once or try again later",
        )
        if wait is None or wait > self._max_wait:
            return error
        return Retry(error, wait=wait)

    def _note_rate_limit(self, answer: httpx.Response) -> None:
        headers = answer.headers
        if "x-ratelimit-remaining" not in headers:
            return
        self.rate_limit = RateLimit(
            limit=integer_of(headers.get("x-ratelimit-limit")),
            remaining=integer_of(headers.get("x-ratelimit-remaining")),
            reset=seconds_of(headers.get("x-ratelimit-reset")),
            resource=headers.get("x-ratelimit-resource"),
        )

    def _parse(self, model: type[_Model], data: Any, endpoint: str) -> _Model:
        try:
            return model.model_validate(data)
        except ValidationError:
            raise GitHubError(
                f"GitHub answered {endpoint} with a body of unexpected shape",
                endpoint=endpoint,
                status=None,
                hint="the API may have changed, or GITHUB_API_URL is not a GitHub API",
            ) from None

    def _odd_answer(self, answer: httpx.Response, wanted: str) -> GitHubError:
        endpoint = endpoint_name(answer.request.method, answer.request.url.path)
        return GitHubError(
            f"GitHub answered {endpoint} with something other than {wanted}",
            endpoint=endpoint,
            status=answer.status_code,
            request_id=answer.headers.get("x-github-request-id"),
            hint="check GITHUB_API_URL: it must be the API's address, not the web server's",
        )
