"""forge/secrets.py and github/wiring.py: the variables each app needs (app.yaml and bots),
the references a plan introduces, and the texts of `github secrets` and of the plan's "new
secrets" section."""

from __future__ import annotations

from provisioner.forge.secrets import (
    app_needs,
    introduced_by_app,
    introduced_markdown,
    introduced_names,
    introduced_text,
)
from provisioner.github.wiring import (
    bundle_template,
    missing_names,
    render_secrets_text,
    secrets_document,
)
from provisioner.models import AppSettings, DesiredApp
from provisioner.plan import make_plan
from tests.test_plan import make_app, make_bot, record

ENV = {"DIFY_KEY": "app-secret-1", "OTHER_KEY": "app-secret-2"}


def dify(variable: str) -> list[dict[str, object]]:
    return [
        {"type": "webhook", "callbackUrl": "https://hooks.example.com/${HOOK_TOKEN}"},
        {
            "type": "dify_chat",
            "callbackUrl": "https://api.dify.ai/v1",
            "auth": {"apiKey": f"${{{variable}}}"},
        },
    ]


def production(*bots: object) -> DesiredApp:
    """An app whose app.yaml references per-app credentials and a postgres state."""
    settings = AppSettings.model_validate(
        {
            "endpoint": "${PROD_ENDPOINT}",
            "appKey": "${RONGCLOUD_PROD_APP_KEY}",
            "appSecret": "${RONGCLOUD_PROD_APP_SECRET}",
            "state": {
                "backend": "postgres",
                "dsn": "${PROVISIONER_PROD_STATE_DSN}",
                "readDsn": "${PROVISIONER_PROD_STATE_READ_DSN}",
            },
        }
    )
    app = make_app(*bots, name="prod")  # type: ignore[arg-type]
    return app.model_copy(update={"settings": settings})


def test_app_needs_lists_every_reference_of_app_yaml_and_the_bots() -> None:
    app = production(make_bot("hr-bot", integrations=dify("DIFY_PROD_HR_KEY")))
    needs = app_needs(app)
    assert [(use.name, use.file, use.field, use.bot) for use in needs.uses] == [
        ("PROD_ENDPOINT", "bots/prod/app.yaml", "endpoint", None),
        ("RONGCLOUD_PROD_APP_KEY", "bots/prod/app.yaml", "appKey", None),
        ("RONGCLOUD_PROD_APP_SECRET", "bots/prod/app.yaml", "appSecret", None),
        ("PROVISIONER_PROD_STATE_DSN", "bots/prod/app.yaml", "state.dsn", None),
        ("PROVISIONER_PROD_STATE_READ_DSN", "bots/prod/app.yaml", "state.readDsn", None),
        ("HOOK_TOKEN", "bots/prod/hr-bot.yaml", "integrations[0].callbackUrl", "hr-bot"),
        ("DIFY_PROD_HR_KEY", "bots/prod/hr-bot.yaml", "integrations[1].auth.apiKey", "hr-bot"),
    ]
    env = {"PROD_ENDPOINT": "sg", "RONGCLOUD_PROD_APP_KEY": "k", "DIFY_PROD_HR_KEY": ""}
    assert needs.missing(env) == [
        "RONGCLOUD_PROD_APP_SECRET",
        "PROVISIONER_PROD_STATE_DSN",
        "HOOK_TOKEN",
        "DIFY_PROD_HR_KEY",
    ]
    assert needs.names(optional=True) == ["PROVISIONER_PROD_STATE_READ_DSN"]


def test_the_bundle_templates_name_each_variable_once() -> None:
    prod = app_needs(production(make_bot("hr-bot", integrations=dify("DIFY_KEY"))))
    demo = app_needs(make_app(make_bot("a"), make_bot("b", integrations=dify("OTHER_KEY"))))
    assert bundle_template([prod, demo]) == (
        "# prod\nPROD_ENDPOINT=\nRONGCLOUD_PROD_APP_KEY=\nRONGCLOUD_PROD_APP_SECRET=\n"
        "PROVISIONER_PROD_STATE_DSN=\nHOOK_TOKEN=\nDIFY_KEY=\n"
        "# demo\nOTHER_KEY=\n"
    )
    assert bundle_template([prod, demo], optional=True) == (
        "# prod\nPROVISIONER_PROD_STATE_READ_DSN=\n"
    )
    assert missing_names([prod, demo], {"DIFY_KEY": "x"}) == [
        "PROD_ENDPOINT",
        "RONGCLOUD_PROD_APP_KEY",
        "RONGCLOUD_PROD_APP_SECRET",
        "PROVISIONER_PROD_STATE_DSN",
        "HOOK_TOKEN",
        "OTHER_KEY",
    ]


def test_the_secrets_text_and_document() -> None:
    demo = make_app(make_bot("a"), make_bot("b", integrations=dify("OTHER_KEY")))
    needs = [app_needs(demo), app_needs(make_app(name="empty"))]
    env = {"DIFY_KEY": "set-value", "HOOK_TOKEN": ""}
    assert render_secrets_text(needs, env) == (
        "App demo (bots/demo):\n"
        "  DIFY_KEY    set       bots/demo/a.yaml: integrations[1].auth.apiKey\n"
        "  HOOK_TOKEN  missing   bots/demo/b.yaml: integrations[0].callbackUrl\n"
        "  OTHER_KEY   missing   bots/demo/b.yaml: integrations[1].auth.apiKey\n"
        "App empty (bots/empty): no variables\n"
        "\n"
        "PROVISIONER_SECRETS (the apply and drift jobs; one NAME=value per line):\n"
        "# demo\n"
        "DIFY_KEY=\n"
        "HOOK_TOKEN=\n"
        "OTHER_KEY=\n"
        "\n"
        "Missing from this environment (2): HOOK_TOKEN, OTHER_KEY\n"
    )
    document = secrets_document(needs, env)
    assert document["missing"] == ["HOOK_TOKEN", "OTHER_KEY"]
    assert document["apps"][0]["variables"][0] == {
        "name": "DIFY_KEY",
        "set": True,
        "optional": False,
        "uses": [{"file": "bots/demo/a.yaml", "field": "integrations[1].auth.apiKey", "bot": "a"}],
    }
    assert document["plan_bundle"] == "" and document["failures"] == []
    assert "set-value" not in str(document)


def test_a_plan_introduces_new_bots_and_new_or_renamed_references_only() -> None:
    before = make_app(make_bot("a"), make_bot("b"), make_bot("c"))
    after = make_app(
        make_bot("a"),  # unchanged: DIFY_KEY is recorded
        make_bot("b", integrations=dify("RENAMED_KEY")),  # a renamed reference
        make_bot("new", integrations=dify("DIFY_KEY")),  # new, but DIFY_KEY is recorded
        make_bot("hr", integrations=dify("DIFY_HR_KEY")),  # new, with a new reference
    )
    doc = make_plan(after, record(before), ENV, check_secrets=False).document
    assert introduced_names(doc, after) == ["DIFY_HR_KEY", "HOOK_TOKEN", "RENAMED_KEY"]
    # a fan-in job has only the plans: there a variable that only unchanged bots hold
    # cannot be told recorded, so a new bot that shares it lists it too
    only = make_app(make_bot("a"))
    grown = make_app(make_bot("a"), make_bot("new"))
    doc = make_plan(grown, record(only), ENV, check_secrets=False).document
    assert introduced_names(doc, grown) == []
    assert introduced_names(doc) == ["DIFY_KEY"]


def test_an_app_never_applied_introduces_its_app_yaml_too() -> None:
    app = production(make_bot("hr-bot", integrations=dify("DIFY_PROD_HR_KEY")))
    doc = make_plan(app, record(make_app(name="prod")), {}, check_secrets=False).document
    assert introduced_names(doc, app) == [
        "PROD_ENDPOINT",
        "RONGCLOUD_PROD_APP_KEY",
        "RONGCLOUD_PROD_APP_SECRET",
        "PROVISIONER_PROD_STATE_DSN",
        "DIFY_PROD_HR_KEY",
        "HOOK_TOKEN",
    ]
    values = {"DIFY_PROD_HR_KEY": "hr-key-value", "HOOK_TOKEN": "hook-token-value"}
    unchanged = make_plan(app, record(app, values), {}, check_secrets=False).document
    assert introduced_by_app([unchanged, doc], [app]) == {"prod": introduced_names(doc, app)}


def test_the_new_secrets_section() -> None:
    found = {"demo": ["DIFY_HR_KEY"], "prod|`x": ["A", "B"]}
    assert introduced_markdown(found) == (
        "\n"
        "> [!IMPORTANT]\n"
        "> **New secrets:** this pull request references variables the recorded state does"
        " not hold yet; add them to the apply job's secrets (the PROVISIONER_SECRETS bundle;"
        " `provisioner github secrets` lists what each app needs) before merging:\n"
        "> - `demo`: `DIFY_HR_KEY`\n"
        "> - `` prod\\|`x ``: `A`, `B`\n"
        "\n"
    )
    assert introduced_text({"demo": ["DIFY_HR_KEY"]}) == (
        "demo: new secrets DIFY_HR_KEY: add them to the apply job's secrets (the"
        " PROVISIONER_SECRETS bundle; `provisioner github secrets` lists what each app"
        " needs) before merging\n"
    )
    assert introduced_markdown({}) == introduced_text({}) == ""


def test_a_reference_in_any_field_is_a_need() -> None:
    app = make_app(make_bot("a", metadata={"owner": "${OWNER}-team"}))
    assert [(use.name, use.field) for use in app_needs(app).uses] == [
        ("OWNER", "metadata.owner"),
        ("DIFY_KEY", "integrations[1].auth.apiKey"),
    ]


def test_a_read_dsn_is_optional_and_goes_to_the_plan_bundle() -> None:
    needs = [app_needs(production())]
    env = {"PROD_ENDPOINT": "sg", "RONGCLOUD_PROD_APP_KEY": "k", "RONGCLOUD_PROD_APP_SECRET": "s"}
    text = render_secrets_text(needs, {**env, "PROVISIONER_PROD_STATE_DSN": "host=/x"})
    assert (
        "  PROVISIONER_PROD_STATE_READ_DSN  optional  bots/prod/app.yaml: state.readDsn\n"
    ) in text
    assert text.endswith(
        "PROVISIONER_PLAN_SECRETS (plan jobs: read-only DSNs only):\n"
        "# prod\n"
        "PROVISIONER_PROD_STATE_READ_DSN=\n"
        "\n"
        "This environment holds every variable the apps need.\n"
    )
    assert secrets_document(needs, env)["missing"] == ["PROVISIONER_PROD_STATE_DSN"]
