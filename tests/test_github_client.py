"""The GitHub REST client against the stateful fake (and MockTransport for transport faults)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from provisioner.errors import (
    ConfigError,
    GitHubBodyTooLongError,
    GitHubError,
    GitHubRateLimitedError,
    TransportError,
)
from provisioner.github.client import API_VERSION, GitHubClient, Repo
from tests.github_fake import (
    HUMAN_LOGIN,
    HUMAN_TOKEN,
    READONLY_TOKEN,
    REPO_NAME,
    WORKFLOW_LOGIN,
    WORKFLOW_TOKEN,
    FakeClock,
    Fault,
    GitHubFake,
)

REPO = Repo.parse(REPO_NAME)
HEAD = "a" * 40
MERGE = "b" * 40


@pytest.fixture
def client(github: GitHubFake, fake_clock: FakeClock) -> Iterator[GitHubClient]:
    with connect(github, fake_clock) as made:
        yield made


def connect(
    github: GitHubFake, clock: FakeClock, token: str = WORKFLOW_TOKEN, **options: float
) -> GitHubClient:
    return GitHubClient(
        token, api_url=github.api_url, sleep=clock.sleep, clock=clock.now, **options
    )


def test_every_request_sends_the_documented_headers(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    client.issue_comments(REPO, number)
    headers = github.headers_seen[-1]
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == API_VERSION == "2022-11-28"
    assert headers["user-agent"].startswith("provisioner/")
    assert headers["authorization"] == f"Bearer {WORKFLOW_TOKEN}"


def test_listings_follow_link_headers_page_by_page(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    for index in range(250):
        github.add_comment(REPO_NAME, number, f"comment {index}")
    comments = client.issue_comments(REPO, number)
    assert [comment.text for comment in comments] == [f"comment {i}" for i in range(250)]
    assert github.calls == {"GET /repos/{owner}/{repo}/issues/{number}/comments": 3}
    assert client.requests_sent == 3
    assert client.rate_limit.remaining == 997
    assert client.rate_limit.resource == "core"


def test_github_enterprise_server_api_prefix(fake_clock: FakeClock) -> None:
    with GitHubFake(prefix="/api/v3", clock=fake_clock.now) as fake:
        fake.add_repo(REPO_NAME)
        number = fake.add_issue(REPO_NAME, title="t")
        for index in range(120):
            fake.add_comment(REPO_NAME, number, f"c{index}")
        assert fake.api_url.endswith("/api/v3")
        with connect(fake, fake_clock) as client:
            assert len(client.issue_comments(REPO, number)) == 120
            assert client.api_url == fake.api_url


def test_pull_requests_of_a_merge_commit(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_pull(REPO_NAME, head_sha=HEAD, merge_commit_sha=MERGE, merged=True)
    [pull] = client.pulls_for_commit(REPO, MERGE)
    assert (pull.number, pull.head.sha, pull.merge_commit_sha) == (number, HEAD, MERGE)
    assert pull.is_merged and not pull.is_from_fork
    assert client.get_pull(REPO, number) == pull
    github.add_commit(REPO_NAME, "c" * 40)
    assert client.pulls_for_commit(REPO, "c" * 40) == []


def test_pull_request_from_a_fork(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_pull(REPO_NAME, head_sha=HEAD, head_repo="mallory/bots")
    assert client.get_pull(REPO, number).is_from_fork


def test_unknown_commit_is_a_clear_error(github: GitHubFake, client: GitHubClient) -> None:
    with pytest.raises(GitHubError) as caught:
        client.pulls_for_commit(REPO, "d" * 40)
    error = caught.value
    assert error.message.startswith(
        f"GitHub refused GET /repos/octo/bots/commits/{'d' * 40}/pulls (HTTP 422): "
        f"No commit found for SHA: {'d' * 40} (request id "
    )
    assert (error.status, error.hint) == (
        422,
        "GitHub refused the request's content; see the message",
    )
    assert error.request_id and error.request_id in error.message
    assert error.documentation_url == "https://docs.github.com/rest"


def test_bad_token_is_401_and_never_shown(github: GitHubFake, fake_clock: FakeClock) -> None:
    token = "ghp_CANARYtokenNeverPrinted123456"
    with connect(github, fake_clock, token) as client:
        with pytest.raises(GitHubError) as caught:
            client.issues(REPO)
        assert token not in repr(client)
    error = caught.value
    assert error.message.startswith(
        "GitHub refused GET /repos/octo/bots/issues (HTTP 401): Bad credentials (request id "
    )
    assert error.hint == (
        "GitHub refused the token: pass the workflow's token as GITHUB_TOKEN (github-token "
        "input) and check that it has not expired"
    )
    assert token not in f"{error.message} {error.hint} {error!r}"


def test_unknown_repository_is_404(github: GitHubFake, client: GitHubClient) -> None:
    with pytest.raises(GitHubError) as caught:
        client.issue_comments(Repo.parse("octo/missing"), 1)
    assert caught.value.status == 404
    assert caught.value.hint == (
        "check GITHUB_REPOSITORY and the number; a token that cannot see a private "
        "repository also gets 404"
    )


def test_read_only_token_cannot_write(github: GitHubFake, fake_clock: FakeClock) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    with (
        connect(github, fake_clock, READONLY_TOKEN) as client,
        pytest.raises(GitHubError) as caught,
    ):
        client.create_comment(REPO, number, "hello")
    assert "(HTTP 403): Resource not accessible by integration" in caught.value.message
    assert "pull-requests: write" in str(caught.value.hint)
    assert github.calls["POST /repos/{owner}/{repo}/issues/{number}/comments"] == 1


def test_body_over_the_limit_is_a_clear_error(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    assert client.create_comment(REPO, number, "é" * 65_536).text == "é" * 65_536
    with pytest.raises(GitHubBodyTooLongError) as caught:
        client.create_comment(REPO, number, "x" * 65_537)
    assert (
        "(HTTP 422): Validation Failed: body is too long (maximum is 65536 characters)"
        in caught.value.message
    )
    assert caught.value.hint == (
        "this is a bug in provisioner: its comments and issues are kept under 65,536 "
        "characters; please report it"
    )


def test_the_author_is_the_token_s_identity(github: GitHubFake, fake_clock: FakeClock) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    with connect(github, fake_clock) as bot, connect(github, fake_clock, HUMAN_TOKEN) as human:
        mine = bot.create_comment(REPO, number, "by the workflow")
        theirs = human.create_comment(REPO, number, "by a person")
        edited = bot.update_comment(REPO, mine.id, "edited")
    assert mine.user is not None and (mine.user.login, mine.user.type) == (WORKFLOW_LOGIN, "Bot")
    assert theirs.user is not None and theirs.user.login == HUMAN_LOGIN
    assert (edited.id, edited.text) == (mine.id, "edited")


def test_issue_listing_filters_and_skips_pull_requests(
    github: GitHubFake, client: GitHubClient
) -> None:
    github.add_pull(REPO_NAME, head_sha=HEAD)
    drift = github.add_issue(REPO_NAME, title="drift", labels=("drift", "bots"))
    github.add_issue(REPO_NAME, title="other", labels=("bots",))
    closed = github.add_issue(REPO_NAME, title="old", labels=("drift",), state="closed")
    github.add_issue(REPO_NAME, title="forged", labels=("drift",), author=HUMAN_LOGIN)
    assert [i.number for i in client.issues(REPO)] == [5, 3, drift]
    assert [i.number for i in client.issues(REPO, labels=["drift"], state="all")] == [
        5,
        closed,
        drift,
    ]
    found = client.issues(REPO, labels=["drift"], state="all", creator=WORKFLOW_LOGIN)
    assert [issue.number for issue in found] == [closed, drift]
    assert [label.name for label in found[1].labels] == ["drift", "bots"]


def test_issue_create_and_partial_update(github: GitHubFake, client: GitHubClient) -> None:
    made = client.create_issue(REPO, title="Drift", body="table", labels=["provisioner-drift"])
    assert (made.state, [label.name for label in made.labels]) == ("open", ["provisioner-drift"])
    closed = client.update_issue(REPO, made.number, state="closed")
    assert (closed.state, closed.title, closed.text) == ("closed", "Drift", "table")
    assert github.issue(REPO_NAME, made.number)["state_reason"] == "completed"
    reopened = client.update_issue(REPO, made.number, state="open", body="new table")
    assert (reopened.state, reopened.text) == ("open", "new table")
    assert github.issue(REPO_NAME, made.number)["state_reason"] == "reopened"


# --- rate limits ------------------------------------------------------------------------------


def test_primary_limit_waits_until_reset_when_that_is_soon_enough(
    github: GitHubFake, fake_clock: FakeClock
) -> None:
    github.exhaust_primary()
    with connect(github, fake_clock, max_wait=4000) as client:
        assert client.issues(REPO) == []
    assert fake_clock.slept == [3601.0]
    assert github.calls["GET /repos/{owner}/{repo}/issues"] == 2


def test_primary_limit_too_far_away_fails_at_once(
    github: GitHubFake, fake_clock: FakeClock
) -> None:
    github.exhaust_primary()
    client = connect(github, fake_clock, max_wait=300)
    with client, pytest.raises(GitHubRateLimitedError) as caught:
        client.issues(REPO)
    assert caught.value.message.startswith(
        "GitHub's primary rate limit stopped GET /repos/octo/bots/issues (HTTP 403); it lifts "
        "in 3601 s (request id "
    )
    assert caught.value.hint == (
        "the workflow's token allows 1,000 requests an hour per repository and about 80 "
        "content-creating requests a minute; run fewer jobs at once or try again later"
    )
    assert fake_clock.slept == []


def test_secondary_limit_honours_retry_after(fake_clock: FakeClock) -> None:
    with GitHubFake(secondary_limit=2, clock=fake_clock.now) as fake:
        fake.add_repo(REPO_NAME)
        number = fake.add_issue(REPO_NAME, title="t")
        with connect(fake, fake_clock) as client:
            for index in range(3):
                client.create_comment(REPO, number, f"c{index}")
        assert fake_clock.slept == [60.0]
        assert fake.calls["POST /repos/{owner}/{repo}/issues/{number}/comments"] == 4
        assert len(fake.comments(REPO_NAME, number)) == 3


def test_secondary_limit_that_persists_is_an_error(
    github: GitHubFake, fake_clock: FakeClock
) -> None:
    limited = Fault(403, {"message": "You have exceeded a secondary rate limit."})
    github.fail_next("GET /repos/{owner}/{repo}/issues", *[limited] * 3)
    client = connect(github, fake_clock, max_attempts=3)
    with client, pytest.raises(GitHubRateLimitedError, match="secondary rate limit stopped"):
        client.issues(REPO)
    assert fake_clock.slept == [60.0, 60.0]


def test_plain_403_is_not_mistaken_for_a_rate_limit(
    github: GitHubFake, client: GitHubClient
) -> None:
    github.fail_next("GET /repos/{owner}/{repo}/issues", Fault(403, {"message": "Forbidden"}))
    with pytest.raises(GitHubError) as caught:
        client.issues(REPO)
    assert not isinstance(caught.value, GitHubRateLimitedError)
    assert github.calls["GET /repos/{owner}/{repo}/issues"] == 1


# --- server and transport failures ------------------------------------------------------


def test_5xx_is_retried_for_reads_and_edits(
    github: GitHubFake, client: GitHubClient, fake_clock: FakeClock
) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    github.fail_next("GET /repos/{owner}/{repo}/issues/{number}/comments", Fault(502))
    github.fail_next("PATCH /repos/{owner}/{repo}/issues/{number}", Fault(503))
    assert client.issue_comments(REPO, number) == []
    assert client.update_issue(REPO, number, title="new").title == "new"
    assert len(fake_clock.slept) == 2


def test_5xx_on_a_create_is_not_repeated(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_issue(REPO_NAME, title="t")
    github.fail_next("POST /repos/{owner}/{repo}/issues/{number}/comments", Fault(502))
    with pytest.raises(GitHubError) as caught:
        client.create_comment(REPO, number, "once")
    assert caught.value.status == 502
    assert caught.value.hint == (
        "GitHub may be having trouble (see githubstatus.com); try again later"
    )
    assert github.calls["POST /repos/{owner}/{repo}/issues/{number}/comments"] == 1


def scripted(*steps: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    queue = list(steps)
    return httpx.MockTransport(lambda request: queue.pop(0)(request))


def ok(data: object, headers: dict[str, str] | None = None) -> Callable[..., httpx.Response]:
    return lambda request: httpx.Response(200, json=data, headers=headers)


def fail(kind: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise kind("injected", request=request)

    return raise_it


def mock_client(transport: httpx.MockTransport, clock: FakeClock) -> GitHubClient:
    return GitHubClient(WORKFLOW_TOKEN, transport=transport, sleep=clock.sleep, clock=clock.now)


COMMENT = {"id": 7, "body": "b", "user": {"login": WORKFLOW_LOGIN, "type": "Bot"}}


def test_connect_errors_are_retried_even_for_a_create(fake_clock: FakeClock) -> None:
    transport = scripted(fail(httpx.ConnectError), ok(COMMENT))
    with mock_client(transport, fake_clock) as client:
        assert client.create_comment(REPO, 1, "b").id == 7
    assert len(fake_clock.slept) == 1


def test_a_create_without_an_answer_is_not_repeated(fake_clock: FakeClock) -> None:
    transport = scripted(fail(httpx.ReadTimeout), ok(COMMENT))
    with mock_client(transport, fake_clock) as client, pytest.raises(TransportError) as caught:
        client.create_comment(REPO, 1, "b")
    assert caught.value.message == (
        "GitHub gave no answer to POST /repos/octo/bots/issues/1/comments (ReadTimeout); it "
        "may or may not have been done"
    )
    assert fake_clock.slept == []


def test_a_read_without_an_answer_is_retried(fake_clock: FakeClock) -> None:
    transport = scripted(fail(httpx.RemoteProtocolError), ok([COMMENT]))
    with mock_client(transport, fake_clock) as client:
        assert [c.id for c in client.issue_comments(REPO, 1)] == [7]


def test_pagination_never_leaves_the_api_origin(fake_clock: FakeClock) -> None:
    evil = {"link": '<https://evil.example/repos/octo/bots/issues?page=2>; rel="next"'}
    client = mock_client(scripted(ok([], evil)), fake_clock)
    with client, pytest.raises(GitHubError) as caught:
        client.issues(REPO)
    assert caught.value.message == (
        "GitHub's pagination link points outside the API; not following it"
    )


def test_an_answer_of_unexpected_shape(fake_clock: FakeClock) -> None:
    with mock_client(scripted(ok({"id": "x"}), ok({"not": "a list"})), fake_clock) as client:
        with pytest.raises(GitHubError) as caught:
            client.create_comment(REPO, 1, "b")
        assert caught.value.message == (
            "GitHub answered POST /repos/octo/bots/issues/1/comments with a body of "
            "unexpected shape"
        )
        with pytest.raises(GitHubError, match="with something other than a list"):
            client.issues(REPO)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        GitHubClient("")
    assert caught.value.message == "the GitHub token is empty"
    with pytest.raises(ConfigError) as caught:
        Repo.parse("not a repo")
    assert caught.value.message == "'not a repo' is not a repository name of the form owner/name"
