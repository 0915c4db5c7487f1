"""Canaries: a planted GitHub token and planted secret values (``${NAME}`` references) never
reach anything the GitHub side writes: the plan comment, the apply outcome, the drift issue,
the job summary, the outputs file, annotations, error messages, reprs or log records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from provisioner.errors import GitHubError, ProvisionerError
from provisioner.forge.comment import AppFailure, RunInfo, render_plan_comment
from provisioner.forge.drift import drift_record
from provisioner.forge.outcome import AppOutcome, BotOutcome, render_apply_outcome
from provisioner.forge.pending import render_pending_plan
from provisioner.forge.secrets import (
    app_needs,
    introduced_by_app,
    introduced_markdown,
    introduced_text,
)
from provisioner.forge.seen import seen_apps, seen_markdown, seen_text
from provisioner.forge.wording import GITHUB, GITLAB
from provisioner.github.actions import (
    annotation,
    append_step_summary,
    mask_commands,
    plan_outputs,
    read_context,
    write_outputs,
)
from provisioner.github.client import GitHubClient, Repo
from provisioner.github.sync import (
    DriftReport,
    find_reviewed_plan,
    post_apply_outcome,
    post_pending,
    sync_drift_issue,
    upsert_plan_comment,
)
from provisioner.github.wiring import render_secrets_text, secrets_document
from provisioner.plan import make_plan
from provisioner.plan.reviewed import decide_bots, reviews_of
from provisioner.render.markdown import BLOCKED_NOTE, render_markdown
from provisioner.render.texts import Lang, tr
from provisioner.state.drift_record import dumps_drift_record
from tests.github_fake import REPO_NAME, FakeClock, GitHubFake
from tests.test_plan import live_of, make_app, make_bot, record

TOKEN_CANARY = "ghs_CANARYtoken4b1d9e07c2a6f3"
WRONG_TOKEN_CANARY = "ghs_CANARYwrongToken77a0c3e91d"
SECRET_CANARY = "CANARY-dify-key-0d6e2f19"
ROTATED_CANARY = "CANARY-dify-key-rotated-a83c"
CANARIES = (TOKEN_CANARY, WRONG_TOKEN_CANARY, SECRET_CANARY, ROTATED_CANARY)
REPO = Repo.parse(REPO_NAME)


def secret_docs() -> list[dict[str, object]]:
    """Plans whose bots reference ${DIFY_KEY}: one created, one with the key rotated, one
    blocked (it deletes every bot of its app)."""
    before = make_app(make_bot("assistant"), name="prod")
    state = record(before, {"DIFY_KEY": SECRET_CANARY, "OTHER_KEY": SECRET_CANARY})
    rotated = make_plan(before, state, {"DIFY_KEY": ROTATED_CANARY, "OTHER_KEY": "x"})
    created = make_plan(
        make_app(make_bot("helper"), name="new"),
        record(make_app(name="new")),
        {"DIFY_KEY": SECRET_CANARY},
    )
    emptied = make_plan(
        make_app(name="empty"),
        record(make_app(make_bot("gone"), name="empty"), {"DIFY_KEY": SECRET_CANARY}),
        {"DIFY_KEY": SECRET_CANARY},
    )
    return [rotated.document, created.document, emptied.document]


@pytest.mark.parametrize("lang", list(Lang))
def test_no_canary_in_any_github_output(
    lang: Lang,
    tmp_path: Path,
    github: GitHubFake,
    fake_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    github.add_token(TOKEN_CANARY, "github-actions[bot]", type="Bot")
    docs = secret_docs()
    assert docs[0]["changes"][0]["fields"][0]["path"] == "integrations[dify_chat].auth.apiKey"
    texts: list[str] = []
    env = {
        "GITHUB_REPOSITORY": REPO_NAME,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "7",
        "GITHUB_SHA": "b" * 40,
        "GITHUB_TOKEN": TOKEN_CANARY,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }
    context = read_context(env)
    texts.append(repr(context))
    run = RunInfo(context.run_url, "a" * 40)
    failure = AppFailure("eu", "could not plan", "check the key")
    body = render_plan_comment(docs, run, [failure], lang=lang)
    texts.append(body)
    assert context.step_summary is not None and context.output is not None
    append_step_summary(context.step_summary, render_markdown(docs, lang=lang))
    write_outputs(context.output, plan_outputs(docs))
    texts.append(annotation("error", "plan failed", file="bots/prod/assistant.yaml", line=3))
    number = github.add_pull(REPO_NAME, head_sha="a" * 40, merge_commit_sha="b" * 40, merged=True)
    with GitHubClient(
        context.token, api_url=context.api_url, sleep=fake_clock.sleep, clock=fake_clock.now
    ) as client:
        texts.append(repr(client))
        _, warnings = upsert_plan_comment(client, REPO, number, body)
        texts.extend(warnings)
        reviewed = find_reviewed_plan(client, REPO, "b" * 40)
        texts.append(repr(reviewed))
        outcome = render_apply_outcome([AppOutcome("prod", {"applied": 1})], run, lang=lang)
        post_apply_outcome(client, REPO, number, outcome)
        texts.append(outcome)
        report = DriftReport(docs, [failure], context.run_url, "t")
        synced = sync_drift_issue(client, REPO, report, lang=lang)
        pending = render_pending_plan(docs, run, number, "refused.", lang=lang)
        post_pending(client, REPO, number, pending, "github-actions[bot]")
        texts.append(repr(synced))
    with GitHubClient(WRONG_TOKEN_CANARY, api_url=github.api_url) as wrong:
        texts.append(repr(wrong))
        with pytest.raises(GitHubError) as caught:
            wrong.issue_comments(REPO, number)
    texts += [caught.value.message, str(caught.value.hint), repr(caught.value)]
    texts.append(_error_of(lambda: read_context({**env, "GITHUB_API_URL": "ftp://x"})))
    texts += [comment["body"] for comment in github.comments(REPO_NAME, number)]
    texts += [str(issue) for issue in github.issues_of(REPO_NAME)]
    texts += [path.read_text() for path in tmp_path.iterdir()]
    texts += [record.getMessage() for record in caplog.records]
    everything = "\n".join(texts)
    assert "(sensitive, changed)" in everything and "plan-ids" in everything
    assert tr(lang, "md.blocked_title", blocked=1, count=3) in everything
    assert tr(lang, "md.blocked_note") in everything and pending in everything
    assert (BLOCKED_NOTE in everything) is (lang is Lang.EN)
    for canary in CANARIES:
        assert canary not in everything, canary
    assert SECRET_CANARY in mask_commands([SECRET_CANARY])  # masks are the one exception


def _error_of(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except ProvisionerError as exc:
        return f"{exc.message} {exc.hint}"
    raise AssertionError("no error")


def test_no_canary_in_the_drift_record_or_what_pull_requests_are_told_of_it() -> None:
    """A Dify key rotated on the server behind git's back: the record names the field, the
    plan's lines name the field, neither holds the key or its fingerprint."""
    desired = make_app(make_bot("assistant"), name="prod")
    state = record(desired, {"DIFY_KEY": SECRET_CANARY, "OTHER_KEY": SECRET_CANARY})
    live = live_of(desired, {"DIFY_KEY": ROTATED_CANARY, "OTHER_KEY": ROTATED_CANARY})
    refreshed = make_plan(desired, state, {"DIFY_KEY": SECRET_CANARY}, live).document
    (drifted,) = refreshed["drift"]
    assert drifted["fields"][0]["path"] == "integrations[dify_chat].auth.apiKey"
    seen = drift_record(refreshed, ["assistant"], at="2026-12-07T03:00:12Z", run=None)
    pull = make_plan(
        make_app(make_bot("assistant", type="x"), name="prod"), state, {}, check_secrets=False
    )
    apps = seen_apps([pull.document], {"prod": seen}, now="2026-12-08T03:00:12Z")
    texts = [dumps_drift_record(seen), repr(seen), seen_text(apps), seen_markdown(apps)]
    texts.append(seen_markdown(apps, Lang.ZH_CN))
    everything = "\n".join(texts)
    assert "drifted in `integrations[dify_chat].auth.apiKey`" in everything
    fingerprints = [
        value["sensitive"]
        for field in drifted["fields"]
        for value in (field["old"], field["new"])
        if isinstance(value, dict)
    ]
    assert len(fingerprints) == 2 and all(f.startswith("hmac-sha256:") for f in fingerprints)
    for secret in (*CANARIES, *fingerprints):
        assert secret not in everything, secret


def test_no_canary_in_the_secrets_texts() -> None:
    """`github secrets` and the plan's new-secrets section (on both forges) name variables,
    never values."""
    env = {"DIFY_KEY": SECRET_CANARY, "OTHER_KEY": ROTATED_CANARY}
    apps = [make_app(make_bot("assistant"), name="prod"), make_app(make_bot("helper"), name="new")]
    needs = [app_needs(app) for app in apps]
    found = introduced_by_app(secret_docs(), apps)  # type: ignore[arg-type]
    texts = [
        render_secrets_text(needs, env),
        str(secrets_document(needs, env)),
        introduced_markdown(found),
        introduced_markdown(found, Lang.ZH_CN),
        introduced_text(found),
        *(introduced_markdown(found, lang, GITLAB) for lang in Lang),
        introduced_text(found, GITLAB),
    ]
    assert "DIFY_KEY" in texts[0] and "DIFY_KEY" in texts[2]
    for canary in CANARIES:
        assert canary not in "\n".join(texts), canary


@pytest.mark.parametrize("lang", list(Lang))
def test_no_canary_in_the_reasons_per_bot(lang: Lang) -> None:
    """A key rotated outside git, on a reviewed bot and on one the merge did not change: the
    outcome's reasons and hints (each forge, each language) name the reference, never a
    value."""
    before = make_app(make_bot("assistant"), make_bot("helper"), name="prod")
    state = record(before, {"DIFY_KEY": SECRET_CANARY, "OTHER_KEY": SECRET_CANARY})
    desired = make_app(make_bot("assistant", name="Renamed"), make_bot("helper"), name="prod")
    reviews = reviews_of(make_plan(desired, state, {}, check_secrets=False), desired)
    recorded = {"DIFY_KEY": SECRET_CANARY, "OTHER_KEY": SECRET_CANARY}
    env = {**recorded, "DIFY_KEY": ROTATED_CANARY}
    plan = make_plan(desired, state, env, live_of(before, recorded))
    decisions = decide_bots(reviews, plan, desired)
    bots = [BotOutcome(d.user_id, d.outcome, d.reason, d.hint) for d in decisions]
    assert [bot.outcome for bot in bots] == ["make", "leave"]
    run = RunInfo("https://example.com/run/1", "a" * 40)
    texts = [
        render_apply_outcome([AppOutcome("prod", bots=bots)], run, lang=lang, wording=wording)
        for wording in (GITHUB, GITLAB)
    ]
    everything = "\n".join(texts)
    assert everything.count("${DIFY_KEY}") == 4
    for canary in CANARIES:
        assert canary not in everything, canary
