"""The pure plan: every change kind, drift, adopt, unmanaged, safety rules, order, plan id,
and Hypothesis properties (a recorded app plans to nothing; applying a plan converges)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.errors import PlanError, UnsafePlanError
from provisioner.models import AppSettings, Bot, DesiredApp
from provisioner.plan import Change, FieldDiff, Plan, change_path, diff_specs, make_plan
from provisioner.plan.canonical import api_payload, canonical_spec
from provisioner.rongcloud.models import BotPayload
from provisioner.secrets import fingerprint
from provisioner.state import RecordedApp, RecordedBot

ENV = {"DIFY_KEY": "app-secret-1", "OTHER_KEY": "app-secret-2"}


def make_bot(user_id: str, **overrides: Any) -> Bot:
    data: dict[str, Any] = {
        "userId": user_id,
        "name": f"Bot {user_id}",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"},
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "${DIFY_KEY}"},
            },
        ],
    }
    data.update(overrides)
    return Bot.model_validate(data)


def make_app(*bots: Bot, name: str = "demo") -> DesiredApp:
    return DesiredApp(
        name=name,
        folder=Path("bots") / name,
        settings=AppSettings(endpoint="local"),
        bots=tuple(bots),
        sources={bot.userId: f"bots/{name}/{bot.userId}.yaml" for bot in bots},
    )


def record(
    app: DesiredApp, env: dict[str, str] = ENV, state: RecordedApp | None = None
) -> RecordedApp:
    """The state an apply of ``app`` leaves behind."""
    state = state or RecordedApp.fresh(app.name)
    for bot in app.bots:
        spec = canonical_spec(bot, env, state.salt)
        state = state.with_bot(bot.userId, RecordedBot(spec, protect=bot.protect))
    return state


def live_of(app: DesiredApp, env: dict[str, str] = ENV) -> list[BotPayload]:
    """What the server returns after an apply of ``app``."""
    return [api_payload(bot, env).model_copy(update={"createdAt": 1}) for bot in app.bots]


def apply_plan(state: RecordedApp, plan: Plan) -> RecordedApp:
    """Record every change's ``after`` spec, as apply does after each successful call."""
    for change in plan.changes:
        bot = None if change.after is None else RecordedBot(change.after, protect=change.protect)
        state = state.with_bot(change.user_id, bot)
    return state


# --- change kinds ------------------------------------------------------------------------


def test_new_app_creates_every_bot_in_user_id_order() -> None:
    app = make_app(make_bot("b"), make_bot("a"))
    state = RecordedApp.fresh("demo")
    plan = make_plan(app, state, ENV)
    assert [(c.action, c.user_id, c.source) for c in plan.changes] == [
        ("create", "a", "bots/demo/a.yaml"),
        ("create", "b", "bots/demo/b.yaml"),
    ]
    assert plan.changes[0].before is None
    assert plan.changes[0].after == canonical_spec(make_bot("a"), ENV, state.salt)
    assert plan.counts == {
        "create": 2,
        "adopt": 0,
        "update": 0,
        "delete": 0,
        "replace": 0,
        "drift": 0,
        "unmanaged": 0,
    }


def test_recorded_app_plans_to_nothing_offline_and_with_refresh() -> None:
    app = make_app(make_bot("a"), make_bot("b"))
    state = record(app)
    assert make_plan(app, state, ENV).is_empty
    refreshed = make_plan(app, state, ENV, live_of(app))
    assert refreshed.is_empty and not refreshed.has_changes and refreshed.drift == ()


def test_update_has_readable_field_paths() -> None:
    state = record(make_app(make_bot("a")))
    changed = make_bot(
        "a",
        name="Renamed",
        metadata={"version": "2", "owner": "team"},
        integrations=[
            {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"},
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "stream": False,
                "auth": {"apiKey": "${DIFY_KEY}"},
            },
        ],
    )
    plan = make_plan(make_app(changed), state, ENV)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.before == state.bots["a"].spec
    assert change.fields == (
        FieldDiff("integrations[dify_chat].stream", True, False),
        FieldDiff("metadata.owner", None, "team"),
        FieldDiff("metadata.version", "1", "2"),
        FieldDiff("name", "Bot a", "Renamed"),
    )


def test_rotated_secret_is_a_sensitive_field_holding_fingerprints_only() -> None:
    state = record(make_app(make_bot("a")))
    plan = make_plan(make_app(make_bot("a")), state, {**ENV, "DIFY_KEY": "rotated"})
    (change,) = plan.changes
    assert change.fields == (
        FieldDiff(
            "integrations[dify_chat].auth.apiKey",
            {"sensitive": fingerprint("app-secret-1", state.salt), "template": "${DIFY_KEY}"},
            {"sensitive": fingerprint("rotated", state.salt), "template": "${DIFY_KEY}"},
            sensitive=True,
        ),
    )
    assert "rotated" not in repr(plan.data) and "app-secret-1" not in repr(plan.data)


def test_integration_added_and_list_changed_count_as_one_field_each() -> None:
    state = record(make_app(make_bot("a")))
    changed = make_bot(
        "a",
        integrations=[
            {
                "type": "webhook",
                "callbackUrl": "https://hooks.example.com/rc",
                "events": ["message:private"],
            },
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "${DIFY_KEY}"},
            },
            {
                "type": "dify_completion",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "${OTHER_KEY}"},
            },
        ],
    )
    (change,) = make_plan(make_app(changed), state, ENV).changes
    assert [field.path for field in change.fields] == [
        "integrations[dify_completion]",
        "integrations[webhook].events",
    ]
    added, events = change.fields
    assert added.old is None and added.new["auth"]["apiKey"]["sensitive"].startswith("hmac-")
    assert (events.old, events.new) == ([], ["message:private"])


def test_delete_of_a_bot_no_longer_declared() -> None:
    state = record(make_app(make_bot("a"), make_bot("gone")))
    plan = make_plan(make_app(make_bot("a")), state, ENV)
    assert plan.changes == (Change("delete", "gone", None, state.bots["gone"].spec, None),)
    assert not plan.is_blocked


def test_adopt_a_declared_bot_found_on_the_server_instead_of_creating_it() -> None:
    app = make_app(make_bot("a"))
    plan = make_plan(app, RecordedApp.fresh("demo"), ENV, live_of(app))
    (change,) = plan.changes
    assert (change.action, change.fields, change.before) == ("adopt", (), None)


def test_adopt_carries_the_diff_between_live_and_desired() -> None:
    live = live_of(make_app(make_bot("a", name="Hand made")))
    plan = make_plan(make_app(make_bot("a")), RecordedApp.fresh("demo"), ENV, live)
    (change,) = plan.changes
    assert change.action == "adopt"
    assert change.fields == (FieldDiff("name", "Hand made", "Bot a"),)


def test_unmanaged_bots_are_reported_never_deleted() -> None:
    app = make_app(make_bot("a"))
    live = [*live_of(app), BotPayload(userId="manual-2"), BotPayload(userId="manual-1")]
    plan = make_plan(app, record(app), ENV, live)
    assert plan.changes == ()
    assert plan.unmanaged == ("manual-1", "manual-2")
    assert plan.counts["unmanaged"] == 2 and not plan.has_changes


def test_drift_changed_on_the_server_is_reported_and_corrected() -> None:
    app = make_app(make_bot("a"))
    state = record(app)
    live = live_of(make_app(make_bot("a", name="Edited in console")))
    plan = make_plan(app, state, ENV, live)
    (drift,) = plan.drift
    assert (drift.user_id, drift.kind) == ("a", "changed")
    assert drift.fields == (FieldDiff("name", "Bot a", "Edited in console"),)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.fields == (FieldDiff("name", "Edited in console", "Bot a"),)
    assert plan.has_changes


def test_drift_missing_on_the_server_is_recreated() -> None:
    app = make_app(make_bot("a"))
    plan = make_plan(app, record(app), ENV, live=[])
    assert [(d.user_id, d.kind) for d in plan.drift] == [("a", "missing")]
    assert [(c.action, c.user_id) for c in plan.changes] == [("create", "a")]


def test_masked_api_key_on_the_server_is_not_drift() -> None:
    app = make_app(make_bot("a"))
    live = api_payload(make_bot("a"), ENV).model_dump(mode="json")
    live["integrations"][1]["auth"]["apiKey"] = "******"
    plan = make_plan(app, record(app), ENV, [BotPayload.model_validate(live)])
    assert plan.drift == () and plan.changes == ()


def test_drift_of_an_undeclared_bot_is_reported_with_its_delete() -> None:
    state = record(make_app(make_bot("a"), make_bot("old")))
    live = live_of(make_app(make_bot("a"), make_bot("old", name="x")))
    plan = make_plan(make_app(make_bot("a")), state, ENV, live)
    assert [(d.user_id, d.kind) for d in plan.drift] == [("old", "changed")]
    assert [(c.action, c.user_id) for c in plan.changes] == [("delete", "old")]


def test_changes_are_ordered_deletes_creates_updates() -> None:
    state = record(make_app(make_bot("u2"), make_bot("u1"), make_bot("d2"), make_bot("d1")))
    app = make_app(
        make_bot("u2", name="x"), make_bot("c2"), make_bot("u1", name="y"), make_bot("c1")
    )
    live = [
        *live_of(make_app(make_bot("u2"), make_bot("u1"), make_bot("d2"), make_bot("d1"))),
        *live_of(make_app(make_bot("c1"))),
    ]
    plan = make_plan(app, state, ENV, live)
    assert [(c.action, c.user_id) for c in plan.changes] == [
        ("delete", "d1"),
        ("delete", "d2"),
        ("adopt", "c1"),
        ("create", "c2"),
        ("update", "u1"),
        ("update", "u2"),
    ]


def test_plan_for_another_apps_state_is_refused() -> None:
    with pytest.raises(PlanError, match="belongs to app staging, not to app demo"):
        make_plan(make_app(make_bot("a")), RecordedApp.fresh("staging"), ENV)


# --- safety rules ------------------------------------------------------------------------


def test_deleting_every_managed_bot_is_blocked_without_allow_empty() -> None:
    state = record(make_app(make_bot("a"), make_bot("b")))
    plan = make_plan(make_app(), state, ENV)
    assert [c.action for c in plan.changes] == ["delete", "delete"]
    assert plan.blocked == (
        "the plan deletes every managed bot of app demo (2); pass --allow-empty if that is"
        " intended",
    )
    with pytest.raises(UnsafePlanError) as caught:
        plan.raise_if_blocked()
    assert caught.value.exit_code == 3
    assert not make_plan(make_app(), state, ENV, allow_empty=True).is_blocked


def test_empty_recorded_and_empty_desired_is_not_blocked() -> None:
    plan = make_plan(make_app(), RecordedApp.fresh("demo"), ENV)
    assert plan.is_empty and not plan.is_blocked


def test_protected_bot_blocks_its_deletion_even_with_allow_empty() -> None:
    state = record(make_app(make_bot("a"), make_bot("keep", protect=True)))
    plan = make_plan(make_app(make_bot("a")), state, ENV, allow_empty=True)
    (change,) = plan.changes
    assert (change.action, change.protect) == ("delete", True)
    assert plan.blocked == (
        "keep is protected (protect: true in state); set protect: false in a separate apply"
        " before deleting it",
    )


def test_unprotecting_is_an_update_recorded_by_its_own_apply() -> None:
    state = record(make_app(make_bot("keep", protect=True)))
    plan = make_plan(make_app(make_bot("keep", protect=False)), state, ENV)
    (change,) = plan.changes
    assert change.action == "update" and change.protect is False
    assert change.fields == (FieldDiff("protect", True, False),)
    unprotected = apply_plan(state, plan)
    assert not make_plan(make_app(), unprotected, ENV, allow_empty=True).is_blocked


# --- plan id -----------------------------------------------------------------------------


def test_plan_id_is_stable_and_hex() -> None:
    app = make_app(make_bot("a", name="x"))
    state = record(make_app(make_bot("a")))
    first, second = make_plan(app, state, ENV), make_plan(app, state, dict(ENV))
    assert first.id == second.id
    assert len(first.id) == 64 and int(first.id, 16) >= 0
    assert first.document["id"] == first.id and first.data["format_version"] == 1


def test_plan_id_depends_on_lineage_serial_and_content() -> None:
    app = make_app(make_bot("a", name="x"))
    state = record(make_app(make_bot("a")))
    base = make_plan(app, state, ENV).id
    assert make_plan(app, replace(state, serial=state.serial + 1), ENV).id != base
    assert make_plan(app, replace(state, lineage="another"), ENV).id != base
    assert make_plan(make_app(make_bot("a", name="y")), state, ENV).id != base
    assert make_plan(app, state, {**ENV, "DIFY_KEY": "rotated"}).id != base


def test_plan_id_ignores_manifest_file_names() -> None:
    app = make_app(make_bot("a"))
    moved = app.model_copy(update={"sources": {"a": "/elsewhere/a.yaml"}})
    state = RecordedApp.fresh("demo")
    assert make_plan(app, state, ENV).id == make_plan(moved, state, ENV).id


def test_plan_id_of_a_never_written_state_is_reproducible() -> None:
    app = make_app(make_bot("a"))
    first = make_plan(app, RecordedApp.fresh("demo"), ENV)
    second = make_plan(app, RecordedApp.fresh("demo"), ENV)
    assert first.lineage != second.lineage
    assert first.id == second.id
    assert first.data["state"] == {
        "lineage": None,
        "serial": 0,
        "last_run": None,
        "last_plan": None,
    }


def test_diff_specs_of_equal_specs_is_empty_and_paths_are_formatted() -> None:
    assert diff_specs({"a": 1}, {"a": 1}) == ()
    assert change_path(("integrations", "dify_chat", "auth", "apiKey")) == (
        "integrations[dify_chat].auth.apiKey"
    )
    assert change_path(("metadata", "a.b")) == 'metadata["a.b"]'


def test_diff_specs_walks_mappings_and_keeps_lists_and_markers_whole() -> None:
    marker = {"sensitive": "hmac-sha256:1", "template": "${A}"}
    old = {
        "name": marker,
        "metadata": {"a": "1", "gone": "x"},
        "integrations": [{"type": "webhook", "events": ["e1"], "enabled": True}],
    }
    new = {
        "name": {**marker, "template": "${B}"},
        "metadata": {"a": "2", "new key": "y"},
        "integrations": [
            {"type": "webhook", "events": ["e1", "e2"], "enabled": True},
            {"type": "dify_chat", "stream": False},
        ],
    }
    assert diff_specs(old, new) == (
        FieldDiff("integrations[dify_chat]", None, {"stream": False}),
        FieldDiff("integrations[webhook].events", ["e1"], ["e1", "e2"]),
        FieldDiff("metadata.a", "1", "2"),
        FieldDiff("metadata.gone", "x", None),
        FieldDiff('metadata["new key"]', None, "y"),
        FieldDiff("name", marker, {**marker, "template": "${B}"}, sensitive=True),
    )


# --- references renamed, secrets rotated (one field each, the marker whole) ----------------


def test_a_renamed_reference_with_the_same_value_is_the_field_flagged_renamed() -> None:
    """``${BOT_NAME_A}`` -> ``${BOT_NAME_B}``, one value: the field ``name`` (not an internal
    ``name.template``), marked ``reference_renamed`` in the plan and its JSON view."""
    env = {**ENV, "BOT_NAME_A": "Assistant", "BOT_NAME_B": "Assistant"}
    state = record(make_app(make_bot("a", name="${BOT_NAME_A}")), env)
    desired = make_app(make_bot("a", name="${BOT_NAME_B}"))
    plan = make_plan(desired, state, env)
    (change,) = plan.changes
    same = fingerprint("Assistant", state.salt)
    old = {"sensitive": same, "template": "${BOT_NAME_A}"}
    new = {"sensitive": same, "template": "${BOT_NAME_B}"}
    assert change.fields == (FieldDiff("name", old, new, sensitive=True),)
    assert change.fields[0].reference_renamed
    assert plan.data["changes"][0]["fields"] == [
        {"path": "name", "old": old, "new": new, "sensitive": True, "reference_renamed": True}
    ]
    reviewed = without_secrets(desired, state)
    assert not reviewed.changes[0].fields[0].reference_renamed
    assert "reference_renamed" not in reviewed.data["changes"][0]["fields"][0]
    assert reviewed.id == plan.id  # the flag needs the values: the id leaves it out


def test_a_renamed_reference_with_another_value_is_a_plain_change() -> None:
    env = {**ENV, "BOT_NAME_A": "Assistant", "BOT_NAME_B": "Helper"}
    state = record(make_app(make_bot("a", name="${BOT_NAME_A}")), env)
    plan = make_plan(make_app(make_bot("a", name="${BOT_NAME_B}")), state, env)
    (field,) = plan.changes[0].fields
    assert (field.path, field.sensitive, field.reference_renamed) == ("name", True, False)
    assert set(plan.data["changes"][0]["fields"][0]) == {"path", "old", "new", "sensitive"}


def test_a_secret_rotated_in_a_top_level_field_keeps_its_reference() -> None:
    env = {**ENV, "BOT_NAME": "Assistant"}
    state = record(make_app(make_bot("a", name="${BOT_NAME}")), env)
    plan = make_plan(make_app(make_bot("a", name="${BOT_NAME}")), state, {**env, "BOT_NAME": "B"})
    assert plan.changes[0].fields == (
        FieldDiff(
            "name",
            {"sensitive": fingerprint("Assistant", state.salt), "template": "${BOT_NAME}"},
            {"sensitive": fingerprint("B", state.salt), "template": "${BOT_NAME}"},
            sensitive=True,
        ),
    )


# --- properties --------------------------------------------------------------------------

_TYPES = ("webhook", "dify_chat", "dify_completion", "dify_chatflow")
_words = st.text(alphabet="abcxyz-", min_size=1, max_size=6)


@st.composite
def bots(draw: st.DrawFn, user_id: str) -> Bot:
    types = draw(st.lists(st.sampled_from(_TYPES), min_size=1, max_size=3, unique=True))
    integrations = []
    for kind in types:
        item: dict[str, Any] = {
            "type": kind,
            "enabled": draw(st.booleans()),
            "stream": draw(st.booleans()),
        }
        if kind == "webhook":
            item["callbackUrl"] = f"https://hooks.example.com/{draw(_words)}"
            item["events"] = draw(
                st.lists(
                    st.sampled_from(["message:private", "message:group"]), max_size=2, unique=True
                )
            )
        else:
            item["callbackUrl"] = "https://api.dify.ai/v1"
            item["auth"] = {"apiKey": draw(st.sampled_from(["${DIFY_KEY}", "${OTHER_KEY}"]))}
        integrations.append(item)
    return make_bot(
        user_id,
        name=draw(_words),
        metadata=draw(st.dictionaries(_words, _words, max_size=3)),
        integrations=draw(st.permutations(integrations)),
        protect=draw(st.booleans()),
    )


@st.composite
def apps(draw: st.DrawFn) -> DesiredApp:
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=4, unique=True))
    return make_app(*(draw(bots(user_id)) for user_id in ids))


@settings(max_examples=60, deadline=None)
@given(apps())
def test_property_a_recorded_app_plans_to_nothing(app: DesiredApp) -> None:
    state = record(app)
    assert make_plan(app, state, ENV).is_empty
    refreshed = make_plan(app, state, ENV, live_of(app))
    assert refreshed.is_empty and refreshed.drift == () and refreshed.unmanaged == ()


@settings(max_examples=60, deadline=None)
@given(apps(), apps())
def test_property_applying_a_plan_converges(before: DesiredApp, after: DesiredApp) -> None:
    state = record(before)
    plan = make_plan(after, state, ENV, live_of(before), allow_empty=True)
    applied = apply_plan(state, plan)
    assert make_plan(after, applied, ENV, allow_empty=True).is_empty
    assert make_plan(after, applied, ENV, live_of(after), allow_empty=True).is_empty


def test_server_matching_the_manifest_but_not_the_record_is_recorded_by_an_update() -> None:
    state = record(make_app(make_bot("a")))
    desired = make_app(make_bot("a", name="New"))
    plan = make_plan(desired, state, ENV, live_of(desired))
    assert [(d.user_id, d.kind) for d in plan.drift] == [("a", "changed")]
    (change,) = plan.changes
    assert (change.action, change.fields) == ("update", (FieldDiff("name", "Bot a", "New"),))
    assert make_plan(desired, apply_plan(state, plan), ENV, live_of(desired)).has_changes is False


@settings(max_examples=60, deadline=None)
@given(apps(), apps(), apps())
def test_property_applying_a_plan_over_drift_converges(
    before: DesiredApp, server: DesiredApp, after: DesiredApp
) -> None:
    state = record(before)
    plan = make_plan(after, state, ENV, live_of(server), allow_empty=True)
    applied = apply_plan(state, plan)
    final = make_plan(after, applied, ENV, live_of(after), allow_empty=True)
    assert final.is_empty and final.drift == ()


def test_the_plan_core_imports_no_io_module() -> None:
    """`import provisioner.plan` loads neither httpx nor a state backend (DESIGN §1)."""
    probe = (
        "import sys, provisioner.plan, provisioner.plan.review; "
        "print(sorted(m for m in ('httpx', 'provisioner.rongcloud.client', 'uvicorn', "
        "'starlette', 'rich', 'subprocess', 'deepdiff', 'filelock', 'psycopg', "
        "'provisioner.state.file.backend', 'provisioner.state.git.backend', "
        "'provisioner.state.postgres.backend') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- plans without secrets (a pull request) and the same plan with them (the apply) ----------


def without_secrets(desired: DesiredApp, state: RecordedApp, **kwargs: Any) -> Plan:
    return make_plan(desired, state, {}, check_secrets=False, **kwargs)


def test_an_unchanged_reference_without_its_secret_is_unchanged_and_not_checked() -> None:
    desired = make_app(make_bot("a"))
    state = record(desired)
    plan = without_secrets(desired, state)
    assert plan.is_empty and plan.unchecked == ("DIFY_KEY",)
    assert plan.data["unchecked"] == ["DIFY_KEY"]
    assert plan.id == make_plan(desired, state, ENV).id


def test_a_pull_request_plan_and_the_apply_plan_share_the_id() -> None:
    """A rename plus a new bot, planned without secrets and with them: one id."""
    state = record(make_app(make_bot("a")))
    desired = make_app(make_bot("a", name="Renamed"), make_bot("b"))
    reviewed = without_secrets(desired, state)
    applied = make_plan(desired, state, ENV)
    assert [(c.action, c.user_id) for c in reviewed.changes] == [("create", "b"), ("update", "a")]
    assert reviewed.id == applied.id
    created = reviewed.changes[0].after
    assert created is not None
    assert created["integrations"][0]["auth"]["apiKey"] == {
        "sensitive": "unchecked",
        "template": "${DIFY_KEY}",
    }


def test_a_secret_rotated_outside_git_gives_the_apply_another_id() -> None:
    desired = make_app(make_bot("a"))
    state = record(desired)
    reviewed = without_secrets(desired, state)
    rotated = make_plan(desired, state, {**ENV, "DIFY_KEY": "rotated-outside-git"})
    assert reviewed.is_empty and not rotated.is_empty
    assert reviewed.id != rotated.id


def test_a_changed_reference_is_a_change_whether_or_not_the_secret_is_there() -> None:
    state = record(make_app(make_bot("a")))
    desired = make_app(
        make_bot(
            "a",
            integrations=[
                {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"},
                {
                    "type": "dify_chat",
                    "callbackUrl": "https://api.dify.ai/v1",
                    "auth": {"apiKey": "${OTHER_KEY}"},
                },
            ],
        )
    )
    reviewed = without_secrets(desired, state)
    applied = make_plan(desired, state, ENV)
    assert [field.path for field in reviewed.changes[0].fields] == [
        "integrations[dify_chat].auth.apiKey"
    ]
    assert reviewed.unchecked == ("OTHER_KEY",) and reviewed.id == applied.id


def test_a_state_recorded_before_templates_plans_no_change() -> None:
    desired = make_app(make_bot("a"))
    state = record(desired)
    (spec,) = [bot.spec for bot in state.bots.values()]
    marker = spec["integrations"][0]["auth"]["apiKey"]
    old_marker = {"sensitive": marker["sensitive"]}
    old_spec = {**spec, "integrations": [dict(spec["integrations"][0]), spec["integrations"][1]]}
    old_spec["integrations"][0]["auth"] = {"apiKey": old_marker}
    old = replace(state, bots={"a": RecordedBot(old_spec)})
    assert make_plan(desired, old, ENV).is_empty
    assert without_secrets(desired, old).is_empty


def test_unmanaged_bots_do_not_change_the_id() -> None:
    desired = make_app(make_bot("a", name="Renamed"))
    state = record(make_app(make_bot("a")))
    live = [*live_of(make_app(make_bot("a"))), api_payload(make_bot("theirs"), ENV)]
    refreshed = make_plan(desired, state, ENV, live)
    assert refreshed.unmanaged == ("theirs",)
    assert refreshed.id == without_secrets(desired, state).id


# --- replacements (a userId changed in its manifest) ---------------------------------------


def renamed(old: str, new: str, *, protect: bool = False) -> tuple[DesiredApp, RecordedApp]:
    """``old`` recorded from ``bots/demo/assistant.yaml``, which now declares ``new``."""
    state = RecordedApp.fresh("demo")
    spec = canonical_spec(make_bot(old), ENV, state.salt)
    state = state.with_bot(old, RecordedBot(spec, protect=protect, source="assistant.yaml"))
    app = make_app(make_bot(new))
    app = app.model_copy(update={"sources": {new: "bots/demo/assistant.yaml"}})
    return app, state


def test_a_changed_user_id_is_one_replacement_of_two_changes() -> None:
    app, state = renamed("old-bot", "new-bot")
    plan = make_plan(app, state, ENV)
    delete, create = plan.changes
    assert (delete.action, delete.user_id, create.action, create.user_id) == (
        "delete",
        "old-bot",
        "create",
        "new-bot",
    )
    assert delete.replacement is create.replacement is not None
    replacement = delete.replacement
    assert (replacement.old, replacement.new) == ("old-bot", "new-bot")
    assert [field.path for field in replacement.fields] == ["name", "userId"]
    assert plan.counts["replace"] == 1 and plan.counts["delete"] == 1
    assert plan.data["changes"][0]["replacement"]["new"] == "new-bot"
    assert not plan.blocked  # renaming the only bot does not empty the app


def test_the_plan_id_covers_the_pairing() -> None:
    app, state = renamed("old-bot", "new-bot")
    paired = make_plan(app, state, ENV)
    unpaired_state = replace(
        state, bots={"old-bot": replace(state.bots["old-bot"], source="other.yaml")}
    )
    unpaired = make_plan(app, unpaired_state, ENV)
    assert unpaired.changes[0].replacement is None
    assert unpaired.blocked  # now it deletes every managed bot
    without_block = make_plan(app, unpaired_state, ENV, allow_empty=True)
    assert [c.action for c in without_block.changes] == [c.action for c in paired.changes]
    assert without_block.id != paired.id


def test_no_pairing_without_a_recorded_source_or_for_a_protected_bot() -> None:
    app, state = renamed("old-bot", "new-bot", protect=True)
    plan = make_plan(app, state, ENV)
    assert plan.changes[0].replacement is not None
    assert plan.blocked == (
        "old-bot is protected (protect: true in state); set protect: false in a separate"
        " apply before deleting it",
    )
    legacy = replace(state, bots={"old-bot": replace(state.bots["old-bot"], source=None)})
    assert all(change.replacement is None for change in make_plan(app, legacy, ENV).changes)


def test_source_survives_the_state_document() -> None:
    _, state = renamed("old-bot", "new-bot")
    assert state.data["bots"]["old-bot"]["source"] == "assistant.yaml"
    again = RecordedApp.from_data(state.data, where="state.json")
    assert again.bots["old-bot"].source == "assistant.yaml"
    old = state.data
    del old["bots"]["old-bot"]["source"]
    assert RecordedApp.from_data(old, where="state.json").bots["old-bot"].source is None
