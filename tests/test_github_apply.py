"""Which plans `github apply` lets through (pure): the reviewed one, what is left of it after
an apply of it stopped part way, and an app with nothing to do; everything else is refused
with what differs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from provisioner.github.apply import carries_on, review_against
from provisioner.github.comment import PlanData, ReviewedApp, plan_data
from provisioner.github.models import Comment, PullRequest
from provisioner.github.sync import ReviewedPlan
from provisioner.plan import Plan, make_plan
from provisioner.plan.canonical import canonical_spec
from provisioner.state import RecordedApp, RecordedBot
from tests.test_plan import ENV, make_app, make_bot, record

BEFORE = make_app(make_bot("assistant"), make_bot("helper"))
AFTER = make_app(make_bot("assistant", name="New"), make_bot("helper"), make_bot("third"))


def reviewed_plan(*plans: Plan, omitted: bool = False) -> ReviewedPlan:
    data = plan_data([plan.document for plan in plans], "a" * 40)
    if omitted:
        data = PlanData(
            head_sha=data.head_sha,
            apps=tuple(app.model_copy(update={"changes": ()}) for app in data.apps),
            changes_omitted=True,
        )
    branch = {"ref": "x", "sha": "a" * 40}
    pull = PullRequest.model_validate(
        {"number": 7, "state": "closed", "head": branch, "base": branch}
    )
    return ReviewedPlan(pull, Comment(id=1), data)


def reviewed_app(plan: Plan) -> ReviewedApp:
    (app,) = plan_data([plan.document], "a" * 40).apps
    return app


def part_applied(state: RecordedApp, plan: Plan, *, by: str | None = None) -> RecordedApp:
    """``state`` after the first change of ``plan`` was applied (stamped ``by``)."""
    first = plan.changes[0]
    bot = next(bot for bot in AFTER.bots if bot.userId == first.user_id)
    spec = canonical_spec(bot, ENV, state.salt)
    stamped = state.with_bot(first.user_id, RecordedBot(spec))
    return stamped.written_by("https://ci/runs/1", by or plan.id)


def test_the_reviewed_plan_passes_and_an_app_not_reviewed_is_refused() -> None:
    state = record(BEFORE)
    plan = make_plan(AFTER, state, ENV)
    review = review_against(reviewed_plan(plan))
    assert review(plan) is None
    other = make_plan(make_app(*AFTER.bots, name="other"), record(make_app(name="other")), ENV)
    refusal = review(other)
    assert refusal is not None
    assert (
        refusal.message
        == "app other has changes but was not in the plan reviewed on pull request #7"
    )


def test_nothing_left_to_do_is_never_refused() -> None:
    state = record(BEFORE)
    review = review_against(reviewed_plan(make_plan(AFTER, state, ENV)))
    assert review(make_plan(BEFORE, replace(state, serial=9), ENV)) is None


def test_what_is_left_after_a_partial_apply_carries_on() -> None:
    state = record(BEFORE)
    plan = make_plan(AFTER, state, ENV)
    left = make_plan(AFTER, part_applied(state, plan), ENV)
    assert left.id != plan.id and len(left.changes) == len(plan.changes) - 1
    assert carries_on(reviewed_app(plan), left.document, changes_known=True)
    assert review_against(reviewed_plan(plan))(left) is None


def test_carrying_on_stops_at_a_write_of_another_plan_drift_new_changes_or_unknown_changes() -> (
    None
):
    state = record(BEFORE)
    plan = make_plan(AFTER, state, ENV)
    reviewed = reviewed_app(plan)
    moved = part_applied(state, plan, by="another-plan-id")
    assert not carries_on(reviewed, make_plan(AFTER, moved, ENV).document, changes_known=True)
    left = make_plan(AFTER, part_applied(state, plan), ENV).document
    assert not carries_on(reviewed, left, changes_known=False)
    assert not carries_on(reviewed, {**left, "drift": [{"user_id": "x"}]}, changes_known=True)
    more = make_app(*AFTER.bots, make_bot("fourth"))
    grown = make_plan(more, part_applied(state, plan), ENV).document
    assert not carries_on(reviewed, grown, changes_known=True)
    replaced = make_plan(AFTER, replace(part_applied(state, plan), lineage="x"), ENV).document
    assert not carries_on(reviewed, replaced, changes_known=True)


def test_a_create_that_came_back_as_an_adoption_is_the_same_change() -> None:
    state = record(BEFORE)
    plan = make_plan(AFTER, state, ENV)
    left: dict[str, Any] = make_plan(AFTER, part_applied(state, plan), ENV).document
    adopted = [
        {**change, "action": "adopt", "fields": [{"path": "name"}]}
        if change["action"] == "create"
        else change
        for change in left["changes"]
    ]
    assert carries_on(reviewed_app(plan), {**left, "changes": adopted}, changes_known=True)


def test_a_refusal_says_what_differs_and_points_a_rotated_key_at_the_dispatch() -> None:
    state = record(BEFORE)
    edited = make_plan(make_app(make_bot("assistant", name="X"), make_bot("helper")), state, ENV)
    review = review_against(reviewed_plan(edited))
    rotated = make_plan(
        make_app(make_bot("assistant", name="X"), make_bot("helper")),
        state,
        {**ENV, "DIFY_KEY": "rotated-1"},
    )
    refusal = review(rotated)
    assert refusal is not None
    assert refusal.message == (
        f"the plan for app demo is not the one reviewed on pull request #7 (reviewed"
        f" {edited.id[:12]}, now {rotated.id[:12]}): changes added: update helper; changes"
        " touching other fields: update assistant (integrations[dify_chat].auth.apiKey, name);"
        " a secret changed outside git: ${DIFY_KEY} (the reference is the same, the value is"
        " not)"
    )
    assert refusal.hint is not None and "dispatch workflow" in refusal.hint
