"""Secrets wiring a team can copy, end to end (the World of tests/github_world.py: the
GitHub fake, the emulator, a bare origin with the state branch, one clone per runner):

- two apps with per-app variable names wired only through the ``PROVISIONER_SECRETS``
  bundle: planned without any secret, applied with the bundle alone;
- `github secrets` lists what each app needs and what the environment lacks;
- `github plan` names the references a pull request introduces;
- `github apply` names every missing variable at once, app.yaml's and the bots';
- a malformed bundle names its line, never a value; the job's env wins over the bundle.
"""

from __future__ import annotations

import json

from tests.apply_support import APP_KEY, APP_SECRET, DIFY_KEY, write_calls
from tests.git_support import branch_file
from tests.github_fake import REPO_NAME
from tests.github_world import (
    GIT_STATE,
    MERGE,
    SECOND_KEY,
    SECOND_SECRET,
    SECRETS,
    World,
    merged_and_applied,
    open_pull,
)

APPS = ("demo", "second")
DEMO_NAMES = {
    "RONGCLOUD_DEMO_APP_KEY": APP_KEY,
    "RONGCLOUD_DEMO_APP_SECRET": APP_SECRET,
    "DIFY_DEMO_ASSISTANT_KEY": DIFY_KEY,
    "DIFY_DEMO_HELPER_KEY": "dify-demo-helper-key-3333",
}
SECOND_NAMES = {
    "RONGCLOUD_SECOND_APP_KEY": SECOND_KEY,
    "RONGCLOUD_SECOND_APP_SECRET": SECOND_SECRET,
    "DIFY_SECOND_BOT_KEY": "dify-second-bot-key-4444",
}


def per_app_names(world: World) -> None:
    """Both apps as `init` names their variables: RONGCLOUD_<APP>_…, DIFY_<APP>_…."""
    world.both(
        "app",
        key_var="RONGCLOUD_DEMO_APP_KEY",
        secret_var="RONGCLOUD_DEMO_APP_SECRET",
        extra=GIT_STATE,
    )
    world.both("bot", "assistant-bot", name="Assistant", dify_var="DIFY_DEMO_ASSISTANT_KEY")
    world.both("bot", "helper-bot", name="Helper", dify_var="DIFY_DEMO_HELPER_KEY")
    world.both(
        "app",
        "second",
        key_var="RONGCLOUD_SECOND_APP_KEY",
        secret_var="RONGCLOUD_SECOND_APP_SECRET",
        extra=GIT_STATE,
    )
    world.both("bot", "second-bot", app="second", dify_var="DIFY_SECOND_BOT_KEY")


def bundle(values: dict[str, str]) -> dict[str, str]:
    lines = ["# production", *(f"{name}={value}" for name, value in values.items())]
    return {"PROVISIONER_SECRETS": "\n".join(lines) + "\n"}


def test_two_apps_with_per_app_names_are_wired_through_the_bundle_alone(world: World) -> None:
    per_app_names(world)
    number = open_pull(world)
    planned = world.plan(number)  # a pull request's job: no secret at all
    assert planned.code == 0, planned.log
    world.github.merge_pull(REPO_NAME, number, MERGE)
    applied = world.apply(secrets=bundle({**DEMO_NAMES, **SECOND_NAMES}))
    assert applied.code == 0, applied.log
    assert write_calls(world.server) == 2 and write_calls(world.server, SECOND_KEY) == 1
    assert sorted(world.state().bots) == ["assistant-bot", "helper-bot"]
    assert sorted(world.state("second").bots) == ["second-bot"]
    for value in (*DEMO_NAMES.values(), *SECOND_NAMES.values()):
        assert f"::add-mask::{value}\n" in applied.out
    masks = applied.out.index("::add-mask::")
    assert applied.out.index("::stop-commands::") > masks  # every mask before any output


NEW_SECRETS = (
    "> **New secrets:** this pull request references variables the recorded state does not"
    " hold yet; add them to the apply job's secrets (the PROVISIONER_SECRETS bundle;"
    " `provisioner github secrets` lists what each app needs) before merging:"
)


def test_the_plan_names_every_variable_a_new_app_needs(world: World) -> None:
    per_app_names(world)
    number = open_pull(world)
    planned = world.plan(number)
    assert planned.code == 0, planned.log
    section = (
        f"\n> [!IMPORTANT]\n{NEW_SECRETS}\n"
        "> - `demo`: `RONGCLOUD_DEMO_APP_KEY`, `RONGCLOUD_DEMO_APP_SECRET`,"
        " `DIFY_DEMO_ASSISTANT_KEY`, `DIFY_DEMO_HELPER_KEY`\n"
        "> - `second`: `RONGCLOUD_SECOND_APP_KEY`, `RONGCLOUD_SECOND_APP_SECRET`,"
        " `DIFY_SECOND_BOT_KEY`\n\n"
    )
    (comment,) = world.comments(number)
    assert section in comment["body"]
    assert comment["body"].index(section) < comment["body"].index("<details>")
    assert planned.summary.endswith(section)
    assert (
        "second: new secrets RONGCLOUD_SECOND_APP_KEY, RONGCLOUD_SECOND_APP_SECRET,"
        " DIFY_SECOND_BOT_KEY: add them to the apply job's secrets (the PROVISIONER_SECRETS"
        " bundle; `provisioner github secrets` lists what each app needs) before merging\n"
    ) in planned.out


def test_the_plan_names_the_references_a_pull_request_adds_and_only_those(
    world: World,
) -> None:
    merged_and_applied(world)
    world.both("bot", "hr-bot", name="HR", dify_var="DIFY_PRODUCTION_HR_KEY")  # a new bot
    world.both("bot", "faq-bot", name="FAQ")  # a new bot with the recorded DIFY_KEY
    world.both("bot", "helper-bot", name="Helper", dify_var="DIFY_HELPER_KEY")  # renamed
    number = open_pull(world, "6" * 40)
    planned = world.plan(number, head="6" * 40)
    assert planned.code == 0, planned.log
    rows = "> - `demo`: `DIFY_PRODUCTION_HR_KEY`, `DIFY_HELPER_KEY`\n"
    (comment,) = world.comments(number)
    assert f"{NEW_SECRETS}\n{rows}" in comment["body"]
    assert f"{NEW_SECRETS}\n{rows}" in planned.summary
    assert "demo: new secrets DIFY_PRODUCTION_HR_KEY, DIFY_HELPER_KEY: " in planned.out
    # a pull request that references nothing new says nothing about secrets
    world.both("bot", "hr-bot", name="HR", dify_var="DIFY_KEY")
    world.both("bot", "helper-bot", name="Helper Two")
    again = world.plan(number, head="7" * 40)
    assert again.code == 0, again.log
    assert "New secrets" not in world.comments(number)[0]["body"]
    assert "new secrets" not in again.out and "New secrets" not in again.summary


def test_github_secrets_lists_what_each_app_needs_and_what_is_missing(world: World) -> None:
    per_app_names(world)
    partial = {
        name: DEMO_NAMES[name] for name in ("RONGCLOUD_DEMO_APP_KEY", "DIFY_DEMO_ASSISTANT_KEY")
    }
    run = world.run(world.main, ["secrets"], event="workflow_dispatch", secrets=bundle(partial))
    assert run.code == 1, run.log
    assert run.out == (
        f"::add-mask::{APP_KEY}\n"
        f"::add-mask::{DIFY_KEY}\n"
        "App demo (bots/demo):\n"
        "  RONGCLOUD_DEMO_APP_KEY     set       bots/demo/app.yaml: appKey\n"
        "  RONGCLOUD_DEMO_APP_SECRET  missing   bots/demo/app.yaml: appSecret\n"
        "  DIFY_DEMO_ASSISTANT_KEY    set       bots/demo/assistant-bot.yaml:"
        " integrations[1].auth.apiKey\n"
        "  DIFY_DEMO_HELPER_KEY       missing   bots/demo/helper-bot.yaml:"
        " integrations[1].auth.apiKey\n"
        "App second (bots/second):\n"
        "  RONGCLOUD_SECOND_APP_KEY     missing   bots/second/app.yaml: appKey\n"
        "  RONGCLOUD_SECOND_APP_SECRET  missing   bots/second/app.yaml: appSecret\n"
        "  DIFY_SECOND_BOT_KEY          missing   bots/second/second-bot.yaml:"
        " integrations[1].auth.apiKey\n"
        "\n"
        "PROVISIONER_SECRETS (the apply and drift jobs; one NAME=value per line):\n"
        "# demo\n"
        "RONGCLOUD_DEMO_APP_KEY=\n"
        "RONGCLOUD_DEMO_APP_SECRET=\n"
        "DIFY_DEMO_ASSISTANT_KEY=\n"
        "DIFY_DEMO_HELPER_KEY=\n"
        "# second\n"
        "RONGCLOUD_SECOND_APP_KEY=\n"
        "RONGCLOUD_SECOND_APP_SECRET=\n"
        "DIFY_SECOND_BOT_KEY=\n"
        "\n"
        "Missing from this environment (5): RONGCLOUD_DEMO_APP_SECRET, DIFY_DEMO_HELPER_KEY,"
        " RONGCLOUD_SECOND_APP_KEY, RONGCLOUD_SECOND_APP_SECRET, DIFY_SECOND_BOT_KEY\n"
    )
    as_json = world.run(world.main, ["secrets", "second", "--format", "json"], event="push")
    assert as_json.code == 1
    document = json.loads(as_json.out)
    assert document["missing"] == [
        "RONGCLOUD_SECOND_APP_KEY",
        "RONGCLOUD_SECOND_APP_SECRET",
        "DIFY_SECOND_BOT_KEY",
    ]
    everything = bundle({**DEMO_NAMES, **SECOND_NAMES})
    complete = world.run(world.main, ["secrets"], event="push", secrets=everything)
    assert complete.code == 0, complete.log
    assert complete.out.endswith("\nThis environment holds every variable the apps need.\n")


def test_apply_names_every_missing_variable_at_once(world: World) -> None:
    per_app_names(world)
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull(REPO_NAME, number, MERGE)
    partial = {
        name: value
        for name, value in DEMO_NAMES.items()
        if name not in ("RONGCLOUD_DEMO_APP_SECRET", "DIFY_DEMO_HELPER_KEY")
    }
    run = world.apply("demo", secrets=bundle(partial))
    assert run.code == 1, run.log
    assert run.err.startswith(
        "error: app demo: the manifests have 2 errors:\n"
        "  bots/demo/app.yaml:3:12: appSecret: environment variable RONGCLOUD_DEMO_APP_SECRET"
        " is not set\n"
        "  bots/demo/helper-bot.yaml:14:20: integrations[1].auth.apiKey: environment variable"
        " DIFY_DEMO_HELPER_KEY is not set\n"
        "  hint: the plan fingerprints every referenced secret: export"
        " RONGCLOUD_DEMO_APP_SECRET=... DIFY_DEMO_HELPER_KEY=... (in CI, add them to the"
        " PROVISIONER_SECRETS bundle; `provisioner github secrets` lists what each app"
        " needs), then run again\n"
    )
    assert "::error file=bots/demo/app.yaml,line=3,col=12,title=env-missing::" in run.out
    assert write_calls(world.server) == 0


def test_a_malformed_bundle_names_its_line_and_no_value(world: World) -> None:
    canary = "CANARY-malformed-bundle-9f3a"
    text = f"RC_KEY={APP_KEY}\nRC_SECRET={APP_SECRET}\n{canary}\n"
    run = world.apply(secrets={"PROVISIONER_SECRETS": text})
    assert run.code == 1
    assert run.err == (
        "error: PROVISIONER_SECRETS, line 3: expected NAME=value\n"
        '  hint: the bundle holds one NAME=value per line (docs/github.md, "One secret for'
        ' every variable"); provisioner never prints its text\n'
    )
    assert canary not in run.log and APP_SECRET not in run.log
    assert write_calls(world.server) == 0


def test_the_jobs_env_wins_over_the_bundle_with_a_warning(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull(REPO_NAME, number, MERGE)
    stale = {**SECRETS, "DIFY_KEY": "dify-stale-in-the-bundle"}
    text = "".join(f"{name}='{value}'\n" for name, value in stale.items())
    run = world.apply(secrets={**SECRETS, "PROVISIONER_SECRETS": text})
    assert run.code == 0, run.log
    assert (
        "::warning title=provisioner::PROVISIONER_SECRETS and the job's environment both set"
        " DIFY_KEY: the environment's value is used\n"
    ) in run.out
    assert "::add-mask::dify-stale-in-the-bundle\n" in run.out
    assert "dify-stale-in-the-bundle" not in run.out.replace(
        "::add-mask::dify-stale-in-the-bundle", ""
    )


def test_no_bundle_value_reaches_a_comment_summary_output_or_log(world: World) -> None:
    """Canaries planted in the bundle, through a plan given the bundle (a same-repository
    job), `github secrets`, the apply with a new secret, and drift."""
    canary = "CANARY-bundle-dify-5c3e9a"
    secret_canary = "CANARY-bundle-secret-77d0"
    second = "CANARY-bundle-second-2a41"
    values = {
        **DEMO_NAMES,
        "DIFY_DEMO_ASSISTANT_KEY": canary,
        "DIFY_DEMO_HELPER_KEY": canary,
        **SECOND_NAMES,
        "DIFY_SECOND_BOT_KEY": second,
        "UNUSED_BUT_BUNDLED": secret_canary,
    }
    per_app_names(world)
    number = open_pull(world)
    world.plan(number, secrets=bundle(values))
    world.run(world.main, ["secrets"], event="push", secrets=bundle(values))
    world.run(world.main, ["secrets", "--format", "json"], event="push", secrets=bundle(values))
    world.github.merge_pull(REPO_NAME, number, MERGE)
    assert world.apply(secrets=bundle(values)).code == 0
    world.both("bot", "hr-bot", app="second", dify_var="DIFY_SECOND_HR_KEY")
    pull = open_pull(world, "6" * 40)
    world.plan(pull, head="6" * 40)
    world.github.merge_pull(REPO_NAME, pull, "7" * 40)
    grown = bundle({**values, "DIFY_SECOND_HR_KEY": second})
    assert world.apply(sha="7" * 40, secrets=grown).code == 0
    world.drift(secrets=grown)
    texts = [comment["body"] for pr in (number, pull) for comment in world.comments(pr)]
    texts += [issue["body"] for issue in world.github.issues_of(REPO_NAME)]
    texts += [branch_file(world.tmp / "origin.git", f"{app}.json") or "" for app in APPS]
    for run in world.runs:
        texts += [run.summary, json.dumps(run.outputs)]
        texts += [line for line in run.log.splitlines() if not line.startswith("::add-mask::")]
    assert any("`DIFY_SECOND_HR_KEY`" in text for text in texts)
    leaked = [text for text in texts if any(c in text for c in (canary, secret_canary, second))]
    assert leaked == []
    unbundled = world.runs[4]  # the second pull request's plan: no secret at all
    bundled = [run for run in world.runs if run is not unbundled]
    assert all(f"::add-mask::{canary}\n" in run.out for run in bundled)
