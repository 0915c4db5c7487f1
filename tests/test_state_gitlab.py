"""The gitlab state backend's own rules, against tests/gitlab_state_fake.py over loopback:
GitLab's token shapes and answers, the holder in the lock ID, locks of other tools, retries,
lost answers, a self-signed CA. The shared contract is tests/test_state_contract.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from provisioner.errors import LockedError, StateError
from provisioner.state.gitlab.api import GitLabStateApi, TokenKind
from provisioner.state.gitlab.backend import GitLabBackend, token_for
from provisioner.state.gitlab.lockid import MAX_LOCK_ID, decode, encode
from provisioner.state.holder import current_holder
from provisioner.state.model import LockHolder
from tests.gitlab_state_fake import GitLabStateFake
from tests.state_support import next_state

JOB = "glcbt-job-token-5c1a"
LONG = "https://gitlab.example.com/" + "very-long-group/" * 5 + "project/-/jobs/123456789"


def backend_of(
    fake: GitLabStateFake,
    tmp_path: Path,
    token: str = "glpat-maintainer",
    kind: TokenKind = "access",
    *,
    project: str = "42",
) -> GitLabBackend:
    api = GitLabStateApi(fake.api_url, project, token, kind, backoff_base=0.01)
    return GitLabBackend("demo", api, "demo", base_dir=tmp_path, pipeline=None)


def test_tokens_the_read_and_write_commands_use() -> None:
    both = {"CI_JOB_TOKEN": "job", "PROVISIONER_GITLAB_TOKEN": "pat"}
    assert token_for(both, read_only=True) == ("job", "job")
    assert token_for(both, read_only=False) == ("pat", "access")
    assert token_for({"CI_JOB_TOKEN": "job"}, read_only=False) == ("job", "job")
    assert token_for({"PROVISIONER_GITLAB_TOKEN": "pat"}, read_only=True) == ("pat", "access")
    assert token_for({}, read_only=True) is None


def test_gitlab_token_shapes_and_answers(gitlab_state: GitLabStateFake) -> None:
    gitlab_state.add_token(JOB, "dev-alice", "developer", job=True)
    gitlab_state.add_token("glpat-reporter", "rita", "reporter")
    url = f"{gitlab_state.api_url}/projects/42/terraform/state/demo"
    cases = [
        ({"PRIVATE-TOKEN": "glpat-maintainer"}, None, 404, "404 Not Found"),  # no state yet
        ({"Authorization": "Bearer glpat-maintainer"}, None, 404, "404 Not Found"),
        ({}, ("gitlab-ci-token", JOB), 404, "404 Not Found"),
        ({"JOB-TOKEN": JOB}, None, 401, "401 Unauthorized"),  # not on these routes
        ({}, ("someone", JOB), 401, "401 Unauthorized"),
        ({"PRIVATE-TOKEN": "wrong"}, None, 401, "401 Unauthorized"),
        ({"PRIVATE-TOKEN": "glpat-reporter"}, None, 403, "403 Forbidden"),
    ]
    for headers, auth, status, message in cases:
        response = httpx.get(url, headers=headers, auth=auth)
        assert (response.status_code, response.json()["message"]) == (status, message), headers
    other = f"{gitlab_state.api_url}/projects/7/terraform/state/demo"
    response = httpx.get(other, headers={"PRIVATE-TOKEN": "glpat-maintainer"})
    assert (response.status_code, response.json()) == (404, {"message": "404 Project Not Found"})
    by_path = f"{gitlab_state.api_url}/projects/ops%2Fbots/terraform/state/demo"
    assert httpx.get(by_path, headers={"PRIVATE-TOKEN": "glpat-maintainer"}).status_code == 404


def test_lock_answers_carry_the_stored_id_username_and_time(gitlab_state: GitLabStateFake) -> None:
    url = f"{gitlab_state.api_url}/projects/42/terraform/state/demo/lock"
    info = {"Operation": "apply", "Info": "", "Who": "me", "Version": "1", "Path": "demo"}
    headers = {"PRIVATE-TOKEN": "glpat-maintainer"}
    first = httpx.post(url, json={"ID": "a", "Created": "x", **info}, headers=headers)
    assert first.status_code == 200 and first.json()["ID"] == "a"
    again = httpx.post(url, json={"ID": "a", "Created": "x", **info}, headers=headers)
    assert again.status_code == 409  # even the same ID
    body = again.json()
    assert (body["ID"], body["Who"], body["Operation"]) == ("a", "project_42_bot", "apply")
    assert body["Created"] != "x"
    assert httpx.post(url, json={"ID": "b"}, headers=headers).status_code == 400
    assert httpx.delete(url, params={"ID": "b"}, headers=headers).status_code == 409
    assert httpx.delete(url, headers=headers).status_code == 200  # no ID: force unlock


def test_the_lock_id_carries_the_holder_within_255_characters() -> None:
    holder = current_holder("provisioner apply", "demo", env={})
    holder = LockHolder(**{**holder.__dict__, "ci_run": LONG, "host": "h" * 90})
    lock_id = encode(holder, LONG.replace("jobs", "pipelines"))
    assert len(lock_id) <= MAX_LOCK_ID
    found = decode(lock_id, "bot", "2026-12-07T03:00:00.000Z", "demo")
    assert found.holder is not None
    assert (found.holder.pid, found.holder.host) == (holder.pid, "h" * 20)
    assert found.pipeline is None and found.holder.boot_id is None  # dropped first
    assert found.holder.ci_run == LONG
    hostile = decode("\x1b[2Jnot ours\r", "evil\x07", "now", "demo")
    assert hostile.describe() == "lock '?[2Jnot ours?' of GitLab user evil?"


def test_a_lock_of_another_tool_is_named_by_its_id_and_gitlab_user(
    gitlab_state: GitLabStateFake, tmp_path: Path
) -> None:
    gitlab_state.lock_state("demo", "6f1c2d9e-terraform-uuid", "alice")
    backend = backend_of(gitlab_state, tmp_path)
    assert backend.is_locked() and backend.lock_holder() is None
    with pytest.raises(LockedError) as caught, backend.lock("provisioner apply"):
        pass  # pragma: no cover - never entered
    assert caught.value.message == (
        "the state of app demo is locked by lock '6f1c2d9e-terraform-uuid' of GitLab user alice"
    )
    assert backend.unlock() is None
    assert not backend.is_locked()


def test_reads_are_retried_and_a_lost_write_answer_is_found_in_the_versions(
    gitlab_state: GitLabStateFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_of(gitlab_state, tmp_path)
    gitlab_state.fail_next = [502, 503]
    assert backend.read_recorded() is None
    state = next_state(backend.read(), "a")
    real = GitLabStateApi.post_state

    def answer_lost(api: GitLabStateApi, *args: object, **kwargs: object) -> int:
        real(api, *args, **kwargs)  # type: ignore[arg-type]
        raise StateError("GitLab project 42: the connection dropped")

    monkeypatch.setattr(GitLabStateApi, "post_state", answer_lost)
    backend.write(state)  # it landed: no error, no unsaved copy
    assert backend_of(gitlab_state, tmp_path).read() == state
    assert not (tmp_path / ".provisioner" / "state-unsaved").exists()


def test_a_removed_lock_keeps_the_write_locally_with_the_push_command(
    gitlab_state: GitLabStateFake, tmp_path: Path
) -> None:
    backend = backend_of(gitlab_state, tmp_path)
    with backend.lock("provisioner apply"):
        backend_of(gitlab_state, tmp_path).unlock()  # `state unlock --force` elsewhere
        with pytest.raises(StateError) as caught:
            backend.write(next_state(backend.read(), "a"))
    assert caught.value.message == (
        "could not store the state of app demo (serial 1) in GitLab Terraform state demo of"
        " project 42: this run no longer holds the lock of app demo: it was removed (state"
        " unlock --force) or taken by another run; it is kept in"
        " .provisioner/state-unsaved/demo.json"
    )
    assert "provisioner state push demo .provisioner/state-unsaved/demo.json" in (
        caught.value.hint or ""
    )
    assert any("already been removed" in notice for notice in backend.notices())


def test_a_state_of_another_app_or_not_a_state_is_refused(
    gitlab_state: GitLabStateFake, tmp_path: Path
) -> None:
    gitlab_state.lock_state("demo", "x", "bot")
    state = gitlab_state.state("demo")
    assert state is not None
    state.lock_id = None
    state.versions[3] = json.dumps({"serial": 3, "terraform_version": "1.9.0"}).encode()
    with pytest.raises(StateError) as caught:
        backend_of(gitlab_state, tmp_path).read()
    assert caught.value.message.startswith("GitLab Terraform state demo of project 42, app demo: ")


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: (ca, certificate, key)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=provisioner test CA")  # fmt: skip
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "san.ext")  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def test_an_internal_ca_is_trusted_only_when_named(tmp_path: Path) -> None:
    ca, certificate, key = _certificates(tmp_path)
    fake = GitLabStateFake(tls=(certificate, key))
    try:
        fake.add_token("glpat-maintainer", "project_42_bot", "maintainer")
        default = GitLabStateApi(fake.api_url, "42", "glpat-maintainer", "access", attempts=1)
        with pytest.raises(StateError) as caught:
            default.get_state("demo", "cannot read the state of app demo")
        assert caught.value.message == (
            "GitLab project 42: cannot read the state of app demo: GitLab's certificate could"
            " not be verified"
        )
        assert "set state.caBundle to its PEM file" in (caught.value.hint or "")
        named = GitLabStateApi(fake.api_url, "42", "glpat-maintainer", "access", ca_file=str(ca))
        assert named.get_state("demo", "cannot read") is None
    finally:
        fake.close()
