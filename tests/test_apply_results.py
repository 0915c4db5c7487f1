"""apply/results.py: the values an apply reports, and their JSON views."""

from __future__ import annotations

from provisioner.apply.results import ApplyResult, ChangeResult, error_data
from provisioner.errors import ConflictError, StateError, TransportError


def test_result_data_is_the_json_view() -> None:
    result = ApplyResult(
        "demo",
        "abc",
        (
            ChangeResult("create", "a", "applied", note="n"),
            ChangeResult("delete", "b", "not_attempted"),
        ),
        interrupted=True,
    )
    assert result.data == {
        "app": "demo",
        "planId": "abc",
        "interrupted": True,
        "counts": {"applied": 1, "failed": 0, "not_attempted": 1},
        "changes": [
            {"action": "create", "userId": "a", "outcome": "applied", "note": "n"},
            {"action": "delete", "userId": "b", "outcome": "not_attempted"},
        ],
    }


def test_error_data_of_a_transport_error_names_the_endpoint() -> None:
    error = TransportError("timed out", endpoint="/v3/bot/get.json", hint="retry")
    assert error_data(error) == {
        "type": "TransportError",
        "message": "timed out",
        "endpoint": "/v3/bot/get.json",
        "hint": "retry",
    }


def test_error_data_of_a_conflict_names_the_endpoint() -> None:
    error = ConflictError("bot a is not on the server", endpoint="/v3/bot/update.json")
    assert error_data(error) == {
        "type": "ConflictError",
        "message": "bot a is not on the server",
        "endpoint": "/v3/bot/update.json",
    }


def test_a_state_not_persisted_makes_the_apply_not_ok() -> None:
    applied = (ChangeResult("create", "a", "applied"),)
    assert ApplyResult("demo", "abc", applied).ok
    unsaved = ApplyResult("demo", "abc", applied, persist_error=StateError("push rejected"))
    assert not unsaved.ok
    assert unsaved.data["persistError"] == {"type": "StateError", "message": "push rejected"}
