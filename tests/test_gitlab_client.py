"""The GitLab client against the stand-in (tests/gitlab_fake.py): GitLab's documented shapes,
each an assumption of docs/gitlab.md — tokens and job-token limits, notes newest first and
system notes, pagination by Link or x-next-page, size limits, rate limits with and without
headers, 404 on writes, an internal CA."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner.errors import ConfigError, GitLabError, GitLabRateLimitedError, TransportError
from provisioner.gitlab.client import GitLabClient
from tests.github_fake import FakeClock
from tests.gitlab_fake import (
    BOT_ID,
    BOT_TOKEN,
    GUEST_TOKEN,
    JOB_TOKEN,
    PROJECT_ID,
    Fault,
    GitLabFake,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[GitLabFake]:
    with GitLabFake(clock=clock.now) as running:
        yield running


def client_of(
    fake: GitLabFake,
    clock: FakeClock,
    token: str = BOT_TOKEN,
    job_token: str = "",
    **kwargs: object,
) -> GitLabClient:
    return GitLabClient(
        token,
        api_url=fake.api_url,
        project_id=str(PROJECT_ID),
        job_token=job_token,
        sleep=clock.sleep,
        clock=clock.now,
        backoff_base=0.5,
        **kwargs,  # type: ignore[arg-type]
    )


def test_me_is_the_tokens_own_user(fake: GitLabFake, clock: FakeClock) -> None:
    with client_of(fake, clock) as client:
        me = client.me()
    assert (me.id, me.login) == (BOT_ID, f"project_{PROJECT_ID}_bot_3f9a1c")


def test_notes_are_read_oldest_first_over_pages_without_system_notes(
    fake: GitLabFake, clock: FakeClock
) -> None:
    iid = fake.add_merge_request("1" * 40)
    for number in range(230):
        fake.add_note("merge_requests", iid, f"note {number}")
    fake.push(iid, "2" * 40)  # a system note
    with client_of(fake, clock, job_token=JOB_TOKEN) as client:
        notes = client.notes("merge_requests", iid)
    assert [note.text for note in notes] == [f"note {number}" for number in range(230)]
    assert fake.calls["GET /projects/{id}/merge_requests/{iid}/notes"] == 3  # 100 per page
    read = [h for h in fake.headers_seen if "job-token" in h]
    assert len(read) == 3 and not any("private-token" in h for h in read)


def test_pagination_follows_x_next_page_when_there_is_no_link(
    fake: GitLabFake, clock: FakeClock
) -> None:
    for number in range(150):
        fake.add_issue(f"issue {number}", "", "x")
    fake.fail_next("GET /projects/{id}/issues")  # nothing: only to prove faults are per call
    fake.faults.clear()
    original = fake._paged

    def without_link(request, items):  # type: ignore[no-untyped-def]
        status, page, headers = original(request, items)
        headers.pop("Link")
        return status, page, headers

    fake._paged = without_link  # type: ignore[method-assign]
    with client_of(fake, clock) as client:
        issues = client.issues(labels="x", author_id=BOT_ID)
    assert len(issues) == 150


def test_a_pagination_link_to_another_host_is_not_followed(
    fake: GitLabFake, clock: FakeClock
) -> None:
    answers = iter(
        [
            httpx.Response(
                200, json=[], headers={"Link": '<https://evil.example/api/v4/x>; rel="next"'}
            ),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    with (
        client_of(fake, clock, transport=transport) as client,
        pytest.raises(GitLabError) as caught,
    ):
        client.issues(labels="x", author_id=1)
    assert "points outside the API" in caught.value.message


def test_the_job_token_may_only_read_a_merge_request_and_its_notes(fake: GitLabFake) -> None:
    iid = fake.add_merge_request("1" * 40)
    headers = {"JOB-TOKEN": JOB_TOKEN}
    base = f"{fake.api_url}/projects/{PROJECT_ID}"
    assert httpx.get(f"{base}/merge_requests/{iid}/notes", headers=headers).status_code == 200
    refused = httpx.post(f"{base}/merge_requests/{iid}/notes", headers=headers, json={"body": "x"})
    assert (refused.status_code, refused.json()) == (404, {"message": "404 Not Found"})
    assert httpx.get(f"{fake.api_url}/user", headers=headers).status_code == 404


def test_a_404_on_a_write_says_which_token_may_write(fake: GitLabFake, clock: FakeClock) -> None:
    iid = fake.add_merge_request("1" * 40)
    fake.fail_next(
        "POST /projects/{id}/merge_requests/{iid}/notes", Fault(404, {"message": "404 Not Found"})
    )
    with client_of(fake, clock) as client, pytest.raises(GitLabError) as caught:
        client.create_note("merge_requests", iid, "hello")
    assert caught.value.status == 404
    assert caught.value.hint is not None and "CI_JOB_TOKEN cannot post notes" in caught.value.hint


def test_a_job_token_given_as_the_comment_token_is_refused(
    fake: GitLabFake, clock: FakeClock
) -> None:
    with client_of(fake, clock, token=JOB_TOKEN) as client, pytest.raises(GitLabError) as caught:
        client.me()
    assert caught.value.status == 401 and JOB_TOKEN not in caught.value.message


def test_a_guest_token_is_forbidden_to_write(fake: GitLabFake, clock: FakeClock) -> None:
    iid = fake.add_merge_request("1" * 40)
    with client_of(fake, clock, token=GUEST_TOKEN) as client, pytest.raises(GitLabError) as caught:
        client.create_note("merge_requests", iid, "hello")
    assert caught.value.status == 403 and "Reporter" in (caught.value.hint or "")


def test_an_unknown_token_is_refused_and_never_shown(fake: GitLabFake, clock: FakeClock) -> None:
    secret = "glpat-notAKnownToken00000000000"
    client = client_of(fake, clock, token=secret)
    with client, pytest.raises(GitLabError) as caught:
        client.me()
    assert caught.value.message == "GitLab refused GET /user (HTTP 401): 401 Unauthorized"
    assert secret not in repr(client) and secret not in str(caught.value.hint)


def test_a_note_over_a_million_characters_is_refused_with_gitlabs_message(
    fake: GitLabFake, clock: FakeClock
) -> None:
    iid = fake.add_merge_request("1" * 40)
    with client_of(fake, clock) as client:
        client.create_note("merge_requests", iid, "x" * 1_000_000)
        with pytest.raises(GitLabError) as caught:
            client.create_note("merge_requests", iid, "x" * 1_000_001)
    assert caught.value.status == 400
    assert "is too long (maximum is 1000000 characters)" in caught.value.message


def test_an_issue_description_over_the_limit_is_refused(fake: GitLabFake, clock: FakeClock) -> None:
    with client_of(fake, clock) as client, pytest.raises(GitLabError) as caught:
        client.create_issue(title="t", description="x" * 1_048_577, labels="a")
    assert "description is too long (maximum is 1048576 characters)" in caught.value.message


def test_unknown_labels_are_created_and_filters_apply(fake: GitLabFake, clock: FakeClock) -> None:
    with client_of(fake, clock) as client:
        made = client.create_issue(title="t", description="d", labels="a,b")
        client.update_issue(made.iid, state_event="close")
        assert [i.iid for i in client.issues(labels="a,b", author_id=BOT_ID)] == [made.iid]
        assert client.issues(labels="a,c", author_id=BOT_ID) == []
        assert client.issues(labels="a", author_id=BOT_ID, state="opened") == []
        assert client.issues(labels="a", author_id=1) == []
    assert {"a", "b"} <= fake.labels


def test_the_merge_requests_of_a_commit_include_open_ones_containing_it(
    fake: GitLabFake, clock: FakeClock
) -> None:
    merged = fake.add_merge_request("1" * 40)
    fake.merge(merged, "2" * 40)
    fake.add_merge_request("3" * 40)
    fake.push(2, "2" * 40)  # an open merge request containing the merge commit
    with client_of(fake, clock, job_token=JOB_TOKEN) as client:
        found = client.commit_merge_requests("2" * 40)
        assert {(each.iid, each.merged_as("2" * 40)) for each in found} == {(1, True), (2, False)}
        with pytest.raises(GitLabError) as caught:
            client.commit_merge_requests("9" * 40)
    assert caught.value.status == 404


def test_rack_attack_429_waits_retry_after(clock: FakeClock) -> None:
    with GitLabFake(clock=clock.now, rack_limit=2) as fake, client_of(fake, clock) as client:
        for _ in range(3):
            client.me()
    assert fake.calls["GET /user"] == 4 and clock.slept and clock.slept[0] > 0


def test_the_notes_limit_answers_429_without_headers_and_the_client_backs_off(
    clock: FakeClock,
) -> None:
    with GitLabFake(clock=clock.now, notes_limit=1) as fake, client_of(fake, clock) as client:
        iid = fake.add_merge_request("1" * 40)
        client.create_note("merge_requests", iid, "one")
        client.create_note("merge_requests", iid, "two")  # refused twice, then the window moved
    assert len(fake.notes("merge_requests", iid)) == 2
    assert clock.slept == [20.0, 20.0, 20.0]
    assert fake.calls["POST /projects/{id}/merge_requests/{iid}/notes"] == 5


def test_a_rate_limit_longer_than_max_wait_fails_naming_it(clock: FakeClock) -> None:
    with GitLabFake(clock=clock.now) as fake, client_of(fake, clock, max_wait=10) as client:
        fake.fail_next("GET /user", Fault(429, {"message": "x"}, {"Retry-After": "3600"}))
        with pytest.raises(GitLabRateLimitedError) as caught:
            client.me()
    assert "it lifts in 3600 s" in caught.value.message


def test_reads_are_retried_on_5xx_but_a_create_is_never_repeated(
    fake: GitLabFake, clock: FakeClock
) -> None:
    iid = fake.add_merge_request("1" * 40)
    fake.fail_next("GET /projects/{id}/merge_requests/{iid}", Fault(502), Fault(503))
    fake.fail_next("POST /projects/{id}/merge_requests/{iid}/notes", Fault(500))
    with client_of(fake, clock) as client:
        assert client.merge_request(iid).iid == iid
        with pytest.raises(GitLabError):
            client.create_note("merge_requests", iid, "once")
    assert fake.calls["POST /projects/{id}/merge_requests/{iid}/notes"] == 1


def test_a_path_encoded_project_id_is_refused(fake: GitLabFake) -> None:
    with pytest.raises(ConfigError) as caught:
        GitLabClient(BOT_TOKEN, api_url=fake.api_url, project_id="group%2Fbots")
    assert "numeric" in caught.value.message


def test_an_internal_ca_is_trusted_through_the_ca_bundle(tmp_path: Path, clock: FakeClock) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with GitLabFake(clock=clock.now, tls=(str(cert), str(key))) as fake:
        with client_of(fake, clock, ca_bundle=cert) as client:
            assert client.me().id == BOT_ID
        with (
            client_of(fake, clock, max_attempts=1) as client,
            pytest.raises(TransportError) as caught,
        ):
            client.me()  # without the bundle the certificate is not trusted: no way to skip it
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.__cause__)
    with pytest.raises(ConfigError):
        client_of(fake, clock, ca_bundle=tmp_path / "missing.pem")
