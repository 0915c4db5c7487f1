"""What `github apply` says when an app's plan is not the reviewed one (pure)."""

from __future__ import annotations

from dataclasses import replace

from provisioner.github.comment import ReviewedApp, plan_data
from provisioner.github.explain import explain_difference, rotated_secrets
from provisioner.plan import make_plan
from tests.test_plan import ENV, make_app, make_bot, record

BEFORE = make_app(make_bot("assistant"), make_bot("helper"))


def reviewed_of(doc: dict[str, object]) -> ReviewedApp:
    (app,) = plan_data([doc], "a" * 40).apps
    return app


def test_state_moved_names_the_run_that_wrote_it_last() -> None:
    state = record(BEFORE)
    desired = make_app(make_bot("assistant", name="New"), make_bot("helper"))
    reviewed = reviewed_of(make_plan(desired, state, ENV).document)
    moved = replace(state, serial=state.serial + 2, last_run="https://ci/runs/9")
    doc = make_plan(desired, moved, ENV).document
    assert explain_difference(reviewed, doc, changes_known=True) == (
        "state moved from serial 2 to 4 in run https://ci/runs/9"
    )


def test_another_lineage_is_a_replaced_state() -> None:
    state = record(BEFORE)
    reviewed = reviewed_of(make_plan(BEFORE, state, ENV).document)
    doc = make_plan(BEFORE, replace(state, lineage="other"), ENV).document
    assert explain_difference(reviewed, doc, changes_known=True) == (
        "the state was replaced (another lineage) since the review"
    )


def test_changes_added_gone_and_touching_other_fields() -> None:
    state = record(BEFORE)
    reviewed_app = make_app(make_bot("assistant", name="New"), make_bot("helper"))
    reviewed = reviewed_of(make_plan(reviewed_app, state, ENV).document)
    now = make_app(make_bot("assistant", metadata={"version": "2"}), make_bot("third"))
    doc = make_plan(now, state, ENV).document
    assert explain_difference(reviewed, doc, changes_known=True) == (
        "changes added: delete helper, create third; "
        "changes touching other fields: update assistant (metadata.version)"
    )


def test_a_rotated_secret_is_named_by_its_variable_never_its_value() -> None:
    state = record(BEFORE)
    reviewed = reviewed_of(make_plan(BEFORE, state, ENV).document)
    rotated = {**ENV, "DIFY_KEY": "rotated-value-77"}
    doc = make_plan(BEFORE, state, rotated).document
    text = explain_difference(reviewed, doc, changes_known=True)
    assert text.endswith(
        "a secret changed outside git: ${DIFY_KEY} (the reference is the same, the value is not)"
    )
    assert "rotated-value-77" not in text
    assert list(rotated_secrets(doc["changes"])) == ["${DIFY_KEY}", "${DIFY_KEY}"]


def test_a_rotated_secret_in_a_top_level_field_is_named_too() -> None:
    """``name: ${BOT_NAME}`` rotated: the field keeps its reference, so it is named (the
    DeepDiff-based diff dropped the template of a field above ``integrations``)."""
    env = {**ENV, "BOT_NAME": "Assistant"}
    app = make_app(make_bot("assistant", name="${BOT_NAME}"))
    state = record(app, env)
    reviewed = reviewed_of(make_plan(app, state, env).document)
    doc = make_plan(app, state, {**env, "BOT_NAME": "Renamed by hand"}).document
    assert explain_difference(reviewed, doc, changes_known=True) == (
        "changes added: update assistant; a secret changed outside git: ${BOT_NAME}"
        " (the reference is the same, the value is not)"
    )


def test_unknown_changes_and_values_the_comment_does_not_record() -> None:
    state = record(BEFORE)
    reviewed_app = make_app(make_bot("assistant", name="One"), make_bot("helper"))
    reviewed = reviewed_of(make_plan(reviewed_app, state, ENV).document)
    doc = make_plan(make_app(make_bot("assistant", name="Two"), make_bot("helper")), state, ENV)
    assert explain_difference(reviewed, doc.document, changes_known=True) == (
        "the new values differ from the reviewed ones (the comment records field names only)"
    )
    assert explain_difference(reviewed, doc.document, changes_known=False) == (
        "the comment did not list the reviewed changes (they did not fit)"
    )


def test_many_items_are_counted_past_five() -> None:
    state = record(make_app())
    reviewed = reviewed_of(make_plan(make_app(), state, ENV).document)
    bots = make_app(*(make_bot(f"bot-{index}") for index in range(8)))
    doc = make_plan(bots, state, ENV).document
    assert explain_difference(reviewed, doc, changes_known=True) == (
        "changes added: create bot-0, create bot-1, create bot-2, create bot-3, create bot-4"
        " and 3 more"
    )
