"""apply/settle.py: every uncertain outcome is settled by reading back, never by a blind repeat;
only RongCloud's documented codes (1002, 1004, 1008) are trusted to mean "nothing happened",
and a 1002 that does not name the App-Key is read back on a create or a delete.

Each case runs through the real executor on a small pool against the stateful fake.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisioner.apply.executor import CallPool
from provisioner.apply.settle import canonical_matcher, may_have_acted
from provisioner.errors import AmbiguousWriteError, ApiError, ConflictError, TransportError
from tests.apply_fakes import (
    NAME_DIFF,
    SALT,
    FakeApi,
    FakeRecorder,
    api_error,
    change,
    outcomes,
    payload,
    run,
)

UNDOCUMENTED = (4711, 20_003)
"""Codes RongCloud documents for none of this: what the real service may answer for a
duplicate userId or an absent bot (the emulator's switch draws such codes at random)."""


@pytest.fixture
def pool() -> Iterator[CallPool]:
    with CallPool(4) as shared:
        yield shared


GENERIC = (1002, 1002)
"""RongCloud's generic parameter error for both: what the real service may answer too."""


@pytest.fixture(
    params=[(1010, 1404), UNDOCUMENTED, GENERIC],
    ids=["emulator-codes", "undocumented", "generic-1002"],
)
def codes(request: pytest.FixtureRequest) -> tuple[int, int]:
    value: tuple[int, int] = request.param
    return value


# --- create ---------------------------------------------------------------------------------


def test_create_dropped_after_commit_is_settled_without_a_second_create(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_after_commit")
    recorder = FakeRecorder()
    result = run(api, [change("create", "a")], pool, recorder)

    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]
    assert result.results[0].note == "create outcome unknown; settled by reading back"
    assert recorder.recorded == [("create", "a", {"createdAt": 1700000000000})]


def test_create_dropped_before_commit_is_created_once_more(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a"), ("create", "a")]


def test_an_ambiguous_create_that_left_another_bot_is_a_conflict_not_an_overwrite(
    pool: CallPool,
) -> None:
    api = FakeApi()
    api.fail("create", "a", "commit_other")
    result = run(api, [change("create", "a")], pool)
    error = result.results[0].error
    assert isinstance(error, ConflictError)
    assert api.calls == [("create", "a"), ("get", "a")]
    assert api.bots["a"].name == "something else"


def test_a_second_ambiguous_create_is_never_followed_by_a_third(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit", "drop_before_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.counts == {"applied": 0, "failed": 1, "not_attempted": 0}
    assert api.count("create", "a") == 2
    assert isinstance(result.results[0].error, AmbiguousWriteError)


def test_a_second_ambiguous_create_that_committed_is_applied(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit", "drop_after_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.count("create", "a") == 2 and "a" in api.bots


def test_create_of_an_existing_equal_bot_adopts_it(pool: CallPool, codes: tuple[int, int]) -> None:
    api = FakeApi(payload("a"), codes=codes)
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]
    assert result.results[0].note == "already existed on the server; adopted"


def test_create_never_overwrites_an_existing_different_bot(
    pool: CallPool, codes: tuple[int, int]
) -> None:
    api = FakeApi(payload("a", name="Hand made"), codes=codes)
    result = run(api, [change("create", "a"), change("create", "b")], pool)
    error = result.results[0].error
    assert outcomes(result) == {"a": "failed", "b": "applied"}
    assert isinstance(error, ConflictError)
    assert error.message == (
        "bot a already exists on the server with another spec; the plan was to create it,"
        " and will not overwrite a bot it did not plan for"
    )
    assert error.hint == (
        "it was made outside this state (by hand, another team, or a lost state): run"
        " `provisioner plan` with refresh to see it, then declare it as it is to adopt it,"
        " or give your bot another userId"
    )
    assert error.endpoint == "/v3/bot/create.json"
    assert api.count("update", "a") == 0 and api.bots["a"].name == "Hand made"


def test_an_answered_create_failure_with_the_bot_absent_stands(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", api_error(1502))
    result = run(api, [change("create", "a")], pool)
    error = result.results[0].error
    assert isinstance(error, ApiError) and error.code == 1502
    assert api.calls == [("create", "a"), ("get", "a")]  # read back once, never created again


def test_a_masked_api_key_counts_as_matching(pool: CallPool) -> None:
    api = FakeApi(mask_keys=True)
    api.fail("create", "a", "drop_after_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]


@pytest.mark.parametrize("code", [1004, 1008])
def test_documented_refusals_are_not_read_back(pool: CallPool, code: int) -> None:
    api = FakeApi()
    api.fail("create", "a", api_error(code, 401 if code == 1004 else 400))
    result = run(api, [change("create", "a")], pool)
    assert isinstance(result.results[0].error, ApiError)
    assert api.calls == [("create", "a")]


@pytest.mark.parametrize("action", ["create", "delete"])
def test_a_1002_naming_the_app_key_is_not_read_back(pool: CallPool, action: str) -> None:
    api = FakeApi(payload("a"))
    refusal = api_error(1002, 401)
    refusal.error_message = "Invalidate App-Key."
    api.fail(action, "a", refusal)
    result = run(api, [change(action, "a")], pool)
    assert result.results[0].error is refusal
    assert api.calls == [(action, "a")]


def test_a_generic_1002_on_create_with_the_bot_absent_stands(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", api_error(1002))
    result = run(api, [change("create", "a")], pool)
    error = result.results[0].error
    assert isinstance(error, ApiError) and error.code == 1002
    assert api.calls == [("create", "a"), ("get", "a")]


def test_a_generic_1002_on_update_is_not_read_back(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", api_error(1002))
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert isinstance(result.results[0].error, ApiError)
    assert api.calls == [("update", "a")]


def test_may_have_acted_trusts_only_the_documented_refusals() -> None:
    assert not may_have_acted(api_error(1002))
    assert not may_have_acted(api_error(1008, 429))
    assert not may_have_acted(api_error(4711, 401))
    assert may_have_acted(api_error(1010))
    assert may_have_acted(api_error(1404, 404))
    assert may_have_acted(api_error(4711, 500))


# --- update ---------------------------------------------------------------------------------


def test_update_dropped_after_commit_is_settled(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", "drop_after_commit")
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.ok
    assert api.calls == [("update", "a"), ("get", "a")]


def test_update_dropped_before_commit_is_sent_once_more(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", "drop_before_commit")
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.ok
    assert api.calls == [("update", "a"), ("get", "a"), ("update", "a")]


def test_update_of_a_bot_deleted_outside_git_fails_that_change_only(
    pool: CallPool, codes: tuple[int, int]
) -> None:
    api = FakeApi(payload("b", name="Old"), codes=codes)
    changes = [change("update", "a", fields=NAME_DIFF), change("update", "b", fields=NAME_DIFF)]
    result = run(api, changes, pool)
    error = result.results[0].error
    assert outcomes(result) == {"a": "failed", "b": "applied"}
    if codes == GENERIC:  # an update's 1002 is not read back: it stands as answered
        assert isinstance(error, ApiError) and error.code == 1002
        assert api.count("get", "a") == 0
        return
    assert isinstance(error, ConflictError)
    assert error.message == "bot a is not on the server (deleted outside git?)"
    assert error.hint == "run `provisioner plan` to see the drift, then apply the new plan"
    assert error.endpoint == "/v3/bot/update.json"
    assert api.count("create", "a") == 0


def test_an_ambiguous_update_of_a_vanished_bot_is_the_same_per_change_failure(
    pool: CallPool,
) -> None:
    api = FakeApi(payload("b", name="Old"))
    api.fail("update", "a", "drop_before_commit")
    changes = [change("update", "a", fields=NAME_DIFF), change("update", "b", fields=NAME_DIFF)]
    with CallPool(1) as one:
        result = run(api, changes, one)
    assert outcomes(result) == {"a": "failed", "b": "applied"}
    error = result.results[0].error
    assert isinstance(error, ConflictError)
    assert error.message == "bot a is not on the server (deleted outside git?)"
    assert api.calls == [("update", "a"), ("get", "a"), ("update", "b")]


def test_an_answered_update_failure_is_settled_when_the_server_holds_the_bot(
    pool: CallPool,
) -> None:
    api = FakeApi(payload("a"))  # already as declared
    api.fail("update", "a", api_error(4711, 500, "/v3/bot/update.json"))
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.ok
    assert result.results[0].note == (
        "update answered an error, but the server holds the bot as declared"
    )


def test_an_answered_update_failure_with_another_bot_stands(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", api_error(4711, 400, "/v3/bot/update.json"))
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    error = result.results[0].error
    assert isinstance(error, ApiError) and error.code == 4711
    assert api.calls == [("update", "a"), ("get", "a")]


# --- delete ---------------------------------------------------------------------------------


def test_delete_of_an_absent_bot_counts_as_applied(pool: CallPool, codes: tuple[int, int]) -> None:
    recorder = FakeRecorder()
    result = run(FakeApi(codes=codes), [change("delete", "gone")], pool, recorder)
    assert result.ok
    assert result.results[0].note == "already absent on the server"
    assert recorder.recorded == [("delete", "gone", {})]


def test_an_answered_delete_failure_with_the_bot_present_stands(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    api.fail("delete", "a", api_error(4711, 400, "/v3/bot/delete.json"))
    result = run(api, [change("delete", "a")], pool)
    assert isinstance(result.results[0].error, ApiError)
    assert api.calls == [("delete", "a"), ("get", "a")] and "a" in api.bots


def test_ambiguous_delete_is_settled_by_reading_back(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    api.fail("delete", "a", "drop_after_commit")
    result = run(api, [change("delete", "a")], pool)
    assert result.ok and api.calls == [("delete", "a"), ("get", "a")]


def test_ambiguous_delete_not_committed_is_sent_once_more(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    api.fail("delete", "a", "drop_before_commit")
    result = run(api, [change("delete", "a")], pool)
    assert result.ok and api.calls == [("delete", "a"), ("get", "a"), ("delete", "a")]
    assert api.bots == {}


# --- reading back ---------------------------------------------------------------------------


def test_a_failed_read_back_leaves_the_outcome_unknown(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_after_commit")
    api.fail("get", "a", TransportError("timed out", endpoint="/v3/bot/get.json"))
    result = run(api, [change("create", "a")], pool)
    error = result.results[0].error
    assert isinstance(error, AmbiguousWriteError)
    assert error.message == (
        "create of a may or may not have been applied (connection dropped), "
        "and reading it back failed: timed out"
    )
    assert error.hint == "re-run `provisioner apply`: it reads the bot back and converges"
    assert api.count("create", "a") == 1


def test_canonical_matcher_compares_canonical_forms() -> None:
    matches = canonical_matcher(SALT)
    created = change("create", "a")
    live = payload("a").model_copy(update={"createdAt": 1, "updatedAt": 2})
    assert matches(created, live)
    assert not matches(created, payload("a", name="Other"))
    assert not matches(created, payload("a", key="rotated-key"))
    assert matches(created, payload("a", key="******"))
    assert not matches(change("delete", "a"), live)
