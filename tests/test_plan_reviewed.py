"""The reviewed change per bot (provisioner.plan.reviewed): the decision table, case by case.

A review is taken from a plan without refresh and without secrets (what a pull-request job
sees); the decision from a plan with the live bots and the secrets (what the apply job sees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from provisioner.forge.outcome import say_reason
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.plan.canonical import bot_digest
from provisioner.plan.reviewed import BotDecision, BotReview, decide_bots, reviews_of
from provisioner.rongcloud.models import BotPayload
from provisioner.state.model import RecordedApp
from tests.test_plan import ENV, live_of, make_app, make_bot, record


def review(desired: DesiredApp, state: RecordedApp) -> tuple[BotReview, ...]:
    """What a pull request's plan records: no refresh, no secret."""
    return reviews_of(make_plan(desired, state, {}, check_secrets=False), desired)


def fresh(
    desired: DesiredApp, state: RecordedApp, live: Sequence[BotPayload], env: dict[str, str] = ENV
) -> Plan:
    return make_plan(desired, state, env, live)


def decided(decisions: Sequence[BotDecision]) -> list[tuple[str, str, str]]:
    """Each decision with its reason as the outcome says it in English (on GitHub)."""
    return [(d.user_id, d.outcome, say_reason(d.reason)) for d in decisions]


def edited(payloads: list[BotPayload], user_id: str, **fields: Any) -> list[BotPayload]:
    return [p.model_copy(update=fields) if p.userId == user_id else p for p in payloads]


BASE = make_app(make_bot("a"), make_bot("b"))


def test_the_review_records_each_changed_bot_with_its_desired_digest() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("c"))
    reviews = review(desired, state)
    assert [(r.user_id, r.action, r.fields) for r in reviews] == [
        ("b", "delete", ()),
        ("c", "create", ()),
        ("a", "update", ("name",)),
    ]
    digests = {r.user_id: r.digest for r in reviews}
    assert digests == {
        "b": None,
        "c": bot_digest(make_bot("c")),
        "a": bot_digest(make_bot("a", name="Renamed")),
    }
    assert reviews[1].source == "bots/demo/c.yaml"


def test_a_digest_needs_no_secret_and_names_the_reference_only() -> None:
    with_key = make_bot("a")
    other_ref = make_bot(
        "a",
        integrations=[
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "${OTHER_KEY}"},
            }
        ],
    )
    assert bot_digest(with_key) == bot_digest(make_bot("a"))
    assert bot_digest(with_key) != bot_digest(other_ref)
    assert bot_digest(with_key).startswith("sha256:") and len(bot_digest(with_key)) == 39


def test_made_in_the_form_the_server_needs() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"), make_bot("c"))
    reviews = review(desired, state)
    live = live_of(BASE)
    assert decided(decide_bots(reviews, fresh(desired, state, live), desired)) == [
        ("c", "make", "created"),
        ("a", "make", "updated"),
    ]


def test_a_create_of_a_bot_the_server_already_holds_as_declared_is_an_adoption() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a"), make_bot("b"), make_bot("hr"))
    live = live_of(desired)  # someone made hr by hand, exactly so (an export)
    decisions = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert decided(decisions) == [
        ("hr", "make", "adopted (the server already held it as declared; no call)")
    ]
    assert decisions[0].change is not None and decisions[0].change.fields == ()


def test_a_create_meeting_another_spec_is_refused() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a"), make_bot("b"), make_bot("hr"))
    live = [*live_of(BASE), *edited(live_of(make_app(make_bot("hr"))), "hr", name="Theirs")]
    (decision,) = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert (decision.outcome, say_reason(decision.reason)) == (
        "refuse",
        "a bot with this userId is already on the server with another spec (`name` differ):"
        " a bot the review did not know",
    )


def test_a_server_already_as_declared_is_recorded_without_a_call() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="By hand"), make_bot("b"))
    live = edited(live_of(BASE), "a", name="By hand")  # the PR accepts the console's change
    (decision,) = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert (decision.outcome, say_reason(decision.reason)) == (
        "record",
        "already as declared on the server (recorded, no call)",
    )
    assert decision.change is not None
    assert (decision.change.action, decision.change.fields) == ("adopt", ())


@pytest.mark.parametrize("revert", [False, True])
def test_drift_in_a_field_the_change_does_not_set(revert: bool) -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", metadata={"version": "2"}), make_bot("b"))
    live = edited(live_of(BASE), "a", name="By hand")
    (decision,) = decide_bots(
        review(desired, state), fresh(desired, state, live), desired, revert_drift=revert
    )
    what = "drifted on the server in `name`, which this change does not set"
    if revert:
        assert decided([decision]) == [
            ("a", "make", f"updated; reverted: {what} (the app says drift: revert)")
        ]
    else:
        assert decided([decision]) == [
            ("a", "refuse", f"{what}: applying it would revert a change nobody reviewed")
        ]


def test_drift_in_the_field_the_change_sets_is_overwritten_as_reviewed() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    live = edited(live_of(BASE), "a", name="By hand")
    (decision,) = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert decided([decision]) == [("a", "make", "updated")]


def test_a_reviewed_bot_deleted_on_the_server_is_refused() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    live = [bot for bot in live_of(BASE) if bot.userId != "a"]
    (decision,) = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert decision.outcome == "refuse"
    assert say_reason(decision.reason) == (
        "deleted on the server outside git: creating it again would revert a deletion nobody"
        " reviewed"
    )


def test_a_reviewed_delete_of_a_bot_already_gone_is_forgotten() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a"))
    live = [bot for bot in live_of(BASE) if bot.userId != "b"]
    (decision,) = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert decided([decision]) == [
        ("b", "forget", "already gone from the server (forgotten from the state, no call)")
    ]


def test_a_manifest_changed_after_its_review_is_refused() -> None:
    state = record(BASE)
    reviewed_app = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    merged = make_app(make_bot("a", name="Renamed", metadata={"version": "9"}), make_bot("b"))
    live = live_of(BASE)
    (decision,) = decide_bots(review(reviewed_app, state), fresh(merged, state, live), merged)
    assert decided([decision]) == [
        (
            "a",
            "refuse",
            "its manifest is not the one reviewed (changed after the review, by a later push or"
            " another change)",
        )
    ]


def test_the_state_having_moved_is_no_refusal() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b", name="Other"))
    reviews = [r for r in review(desired, state) if r.user_id == "a"]  # this PR changed a
    moved = record(make_app(make_bot("a"), make_bot("b", name="Other")), state=state)
    live = live_of(make_app(make_bot("a"), make_bot("b", name="Other")))
    assert decided(decide_bots(reviews, fresh(desired, moved, live), desired)) == [
        ("a", "make", "updated")
    ]


def test_a_re_run_finds_what_is_done_and_does_the_rest() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"), make_bot("c"))
    reviews = review(desired, state)
    half = record(make_app(make_bot("a"), make_bot("b"), make_bot("c")), state=state)
    live = live_of(make_app(make_bot("a"), make_bot("b"), make_bot("c")))  # c was made
    assert decided(decide_bots(reviews, fresh(desired, half, live), desired)) == [
        ("c", "done", "nothing to do (already as declared)"),
        ("a", "make", "updated"),
    ]


def test_bots_the_review_did_not_change_are_left_alone() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b", name="Unreviewed"))
    reviews = [r for r in review(desired, state) if r.user_id == "a"]
    live = edited(live_of(BASE), "a", type="Drifted")
    decisions = decide_bots(reviews, fresh(desired, state, live), desired)
    assert decided(decisions)[1:] == [
        (
            "b",
            "leave",
            "has an unapplied change (update) that this merge did not review",
        )
    ]


def test_drift_of_a_bot_the_review_did_not_change_is_left_to_the_drift_issue() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    live = edited(live_of(BASE), "b", name="By hand")
    decisions = decide_bots(review(desired, state), fresh(desired, state, live), desired)
    assert decided(decisions) == [
        ("a", "make", "updated"),
        ("b", "leave", "changed on the server outside git; this merge did not change it"),
    ]


def test_a_rotated_secret_is_named_with_the_reviewed_change_and_left_on_others() -> None:
    state = record(BASE)
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    rotated = {**ENV, "DIFY_KEY": "rotated"}
    live = live_of(BASE)
    decisions = decide_bots(review(desired, state), fresh(desired, state, live, rotated), desired)
    assert decided(decisions) == [
        ("a", "make", "updated; also a secret changed outside git: ${DIFY_KEY}"),
        (
            "b",
            "leave",
            "a secret changed outside git: ${DIFY_KEY} (the reference is the same, the value is"
            " not); this merge did not change the bot",
        ),
    ]
