"""apply/readback.py against the in-memory fake API: what a read-back concludes from what the
server holds. The same cases through the CLI and the emulator: test_cli_apply_converge.py."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.apply import readback
from provisioner.apply.readback import ReadBack
from provisioner.apply.results import ChangeResult
from provisioner.errors import NotConvergedError
from provisioner.plan import Change
from tests.apply_fakes import (
    NAME_DIFF,
    SALT,
    SECRET,
    FakeApi,
    FakeRecorder,
    api_error,
    change,
    payload,
)


def applied(*changes: Change) -> tuple[ChangeResult, ...]:
    return tuple(ChangeResult(each.action, each.user_id, "applied") for each in changes)


def verify(
    api: FakeApi, *changes: Change, recorder: FakeRecorder | None = None
) -> tuple[tuple[ChangeResult, ...], list[ChangeResult]]:
    """The settled results and those reported, for ``changes`` all applied."""
    sent = {each.user_id: payload(each.user_id) for each in changes}
    reported: list[ChangeResult] = []
    results = ReadBack(api, SALT, sent).verify(
        changes, applied(*changes), recorder or FakeRecorder(), (), reported.append
    )
    return results, reported


def test_a_bot_held_exactly_as_sent_is_verified_without_canonicalising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("canonicalised a bot the server holds as sent")

    monkeypatch.setattr(readback, "canonical_live", refuse)
    api = FakeApi(payload("a-bot"), payload("b-bot"))
    results, reported = verify(
        api, change("create", "a-bot"), change("update", "b-bot", fields=NAME_DIFF)
    )
    assert [(each.outcome, each.note) for each in results] == [("applied", None)] * 2
    assert reported == []
    assert api.calls == [("get", "a-bot,b-bot")]


def test_a_bot_held_otherwise_but_equal_in_canonical_form_is_as_declared() -> None:
    """The server leaves out what the body sent empty: not as sent, still as declared."""
    api = FakeApi(payload("a-bot").model_copy(update={"metadata": None, "createdAt": 1}))
    results, reported = verify(api, change("create", "a-bot"))
    assert [(each.outcome, each.note) for each in results] == [("applied", None)]
    assert reported == []


def test_a_metadata_key_the_server_kept_fails_and_is_recorded_as_held() -> None:
    api = FakeApi(payload("a-bot").model_copy(update={"metadata": {"team": "old"}}))
    recorder = FakeRecorder()
    results, reported = verify(api, change("update", "a-bot", fields=NAME_DIFF), recorder=recorder)
    (result,) = results
    assert result.outcome == "failed" and reported == [result]
    assert isinstance(result.error, NotConvergedError)
    assert result.error.message == (
        "not converged: the server kept `metadata.team: old` after the update"
    )
    assert recorder.recorded == [("update", "a-bot", {})]


def test_a_masked_key_is_left_out_and_said_once() -> None:
    api = FakeApi(payload("a-bot"), payload("b-bot"), mask_keys=True)
    results, reported = verify(api, change("create", "a-bot"), change("create", "b-bot"))
    assert [(each.outcome, each.note) for each in results] == [
        ("applied", "auth.apiKey not compared: the server returns it masked"),
        ("applied", None),
    ]
    assert reported == []  # the note rides on the result; nothing failed


def test_another_key_on_the_server_fails_without_showing_either() -> None:
    api = FakeApi(payload("a-bot", key="some-other-key-000"))
    (result,), _ = verify(api, change("create", "a-bot"))
    assert result.error is not None
    assert result.error.message == (
        "not converged: the server holds another value for"
        " `integrations[dify_chat].auth.apiKey` after the create"
    )
    assert SECRET not in repr(result) and "some-other-key" not in repr(result)


def test_a_bot_the_server_does_not_hold_fails_and_is_recorded_gone() -> None:
    recorder = FakeRecorder()
    (result,), _ = verify(FakeApi(), change("create", "a-bot"), recorder=recorder)
    assert result.error is not None
    assert result.error.message == (
        "not converged: the server does not hold the bot after the create"
    )
    assert recorder.recorded == [("delete", "a-bot", {})]


def test_a_read_that_fails_leaves_every_change_applied_and_not_verified() -> None:
    api = FakeApi(payload("a-bot"), payload("b-bot"))
    api.fail("get", "a-bot,b-bot", api_error(1050, 500, "/v3/bot/get.json"))
    results, reported = verify(
        api, change("create", "a-bot"), change("update", "b-bot", fields=NAME_DIFF)
    )
    note = "not verified: reading back failed: RongCloud refused the call (1050)"
    assert [(each.outcome, each.note) for each in results] == [("applied", note)] * 2
    assert reported == list(results)
