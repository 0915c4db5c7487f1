"""`provisioner check` end to end over loopback: every pre-flight outcome against the Dify
stand-in (and a misbehaving server), each asserted at its file:line:col, in every format."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator.dify.server import DifyStandIn
from tests.dify_support import APPS, KEYS, CheckWorkspace, Misbehaving, at, enter


@pytest.fixture(scope="module")
def dify() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dify: DifyStandIn) -> CheckWorkspace:
    dify.set_faults(busy=0, quota=False, stream_error=False)
    workspace = enter(tmp_path, monkeypatch, {})
    workspace.app()
    return workspace


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    for key in KEYS.values():
        assert key not in captured.out + captured.err
    return code, captured.out, captured.err


def one(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    capsys: pytest.CaptureFixture[str],
    *,
    kind: str,
    key: str,
    stream: bool = True,
) -> tuple[int, list[str], str]:
    """Check one bot ``b`` with one integration; the exit code, output lines and its file."""
    file = ws.bot("b", kind=kind, url=dify.api_base, key_var=key, stream=stream)
    code, out, err = check(capsys, "--timeout", "5")
    assert err == ""
    return code, out.splitlines(), file


# --- passing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "app"),
    [
        ("dify_chat", "DIFY_CHAT", 'Chatbot app "Helper"'),
        ("dify_chat", "DIFY_AGENT", 'Agent app "Agent"'),
        ("dify_chatflow", "DIFY_FLOW", 'Chatflow app "Flow"'),
        ("dify_completion", "DIFY_TEXT", 'Text Generator app "Writer"'),
    ],
)
def test_a_matching_app_passes(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    app: str,
) -> None:
    code, lines, _ = one(ws, dify, capsys, kind=kind, key=key)
    assert (code, lines) == (
        0,
        [f"demo/b {kind}: passed ({app})", "Checked 1 Dify integration: 1 passed, 0 failed."],
    )


def test_no_dify_integration_is_nothing_to_check(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws.root / "bots" / "demo" / "hook.yaml").write_text(
        "userId: hook\nname: Hook\ntype: t\nprofileUrl: https://example.com/p.png\n"
        "integrations:\n  - {type: webhook, callbackUrl: https://example.com/h}\n",
        encoding="utf-8",
    )
    assert check(capsys) == (0, "No enabled Dify integrations to check.\n", "")


# --- the key and the app ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "field", "code", "message", "hint"),
    [
        (
            "DIFY_UNKNOWN",
            "auth.apiKey",
            "dify-key-rejected",
            "Dify rejected the app key (HTTP 401 unauthorized: Access token is invalid)",
            "set ${DIFY_UNKNOWN} to the key on the app's API Access page in Dify (a "
            "knowledge-base key does not work)",
        ),
        (
            "DIFY_OFF",
            "auth.apiKey",
            "dify-app-unavailable",
            "the Dify app is disabled, its API service is off or its workspace is archived "
            "(HTTP 403 forbidden: The app's API service has been disabled.)",
            "enable the app and its API in Dify (the app's API Access page)",
        ),
        (
            "DIFY_GONE",
            "auth.apiKey",
            "dify-app-gone",
            "the Dify app of this key no longer exists (HTTP 403 forbidden: The app no longer "
            "exists.)",
            "set ${DIFY_GONE} to the key of an app that exists (the app's API Access page in Dify)",
        ),
        (
            "DIFY_OLD_OFF",
            "callbackUrl",
            "dify-app-unavailable",
            "the Dify app is unavailable (HTTP 404 not_found: The requested URL was not found "
            "on the server.); Dify before mid-2024 answers 404 for a disabled app or API, and "
            "any server does for a URL that is not a Dify API base",
            "enable the app and its API in Dify, and check that callbackUrl ends in /v1",
        ),
        (
            "DIFY_DRAFT",
            "",
            "dify-app-unpublished",
            "the Dify app is not published or is misconfigured (HTTP 400 app_unavailable: App "
            "unavailable, please check your app configurations.)",
            "publish the app in Dify (Publish → Update) and check its model settings",
        ),
    ],
)
def test_key_and_app_failures(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    capsys: pytest.CaptureFixture[str],
    key: str,
    field: str,
    code: str,
    message: str,
    hint: str,
) -> None:
    exit_code, lines, file = one(ws, dify, capsys, kind="dify_chat", key=key)
    path = "integrations[0]" + (f".{field}" if field else "")
    assert exit_code == 1
    assert lines[:2] == [f"{at(file, field)}: error: {path}: {message}", f"  hint: {hint}"]
    assert lines[2] in (
        "demo/b dify_chat: failed (1 error)",
        'demo/b dify_chat: failed (1 error; Chatbot app "Draft")',  # /info answered
    )
    assert lines[3:] == ["Checked 1 Dify integration: 0 passed, 1 failed."]
    as_json = json.loads(check_json(capsys))
    assert as_json["diagnostics"][0]["code"] == code


def check_json(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, _ = check(capsys, "--format", "json")
    assert code == 1
    return out


# --- the mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "stream", "field", "message", "hint"),
    [
        (
            "dify_chatflow",
            "DIFY_CHAT",
            True,
            "type",
            "the Dify app is a Chatbot app (mode chat), but dify_chatflow calls Chatflow "
            "(advanced-chat) apps",
            "use type: dify_chat for this app, or set auth.apiKey to the key of a Chatflow "
            "(advanced-chat) app",
        ),
        (
            "dify_completion",
            "DIFY_FLOW",
            True,
            "type",
            "the Dify app is a Chatflow app (mode advanced-chat), but dify_completion calls "
            "Text Generator (completion) apps",
            "use type: dify_chatflow for this app, or set auth.apiKey to the key of a Text "
            "Generator (completion) app",
        ),
        (
            "dify_chatflow",
            "DIFY_WORKFLOW",
            True,
            "type",
            "the Dify app is a Workflow app (mode workflow): no RongCloud integration type "
            "calls it",
            "RongCloud calls Chatbot, Agent, Chatflow and Text Generator apps: rebuild it as a "
            "Chatflow app (dify_chatflow)",
        ),
        (
            "dify_chat",
            "DIFY_NEW_AGENT",
            True,
            "type",
            "the Dify app is a New Agent app (mode agent): no RongCloud integration type calls it",
            "RongCloud calls Chatbot, Agent, Chatflow and Text Generator apps: use an Agent "
            "app (agent-chat) with dify_chat",
        ),
        (
            "dify_chat",
            "DIFY_AGENT",
            False,
            "stream",
            "the Dify app is an Agent app (mode agent-chat), which answers only in streaming "
            "mode, but stream is false",
            "set stream: true (RongCloud then pushes the answer as it arrives)",
        ),
    ],
)
def test_mode_failures(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    stream: bool,
    field: str,
    message: str,
    hint: str,
) -> None:
    code, lines, file = one(ws, dify, capsys, kind=kind, key=key, stream=stream)
    assert code == 1
    assert lines[:2] == [
        f"{at(file, field)}: error: integrations[0].{field}: {message}",
        f"  hint: {hint}",
    ]
    assert lines[2].startswith(f"demo/b {kind}: failed (1 error; ")


def test_an_older_dify_without_mode_is_a_warning_not_a_failure(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, file = one(ws, dify, capsys, kind="dify_chat", key="DIFY_OLD")
    assert (code, lines) == (
        0,
        [
            f"{at(file, 'type')}: warning: integrations[0].type: Dify did not say the app's "
            "mode (Dify before mid-2024): whether it is a Chatbot (chat) or Agent (agent-chat) "
            "app cannot be verified",
            "  hint: check the app's type in Dify by hand (or upgrade Dify, whose /info names "
            "the mode)",
            'demo/b dify_chat: passed (1 warning; Dify app "Old")',
            "Checked 1 Dify integration: 1 passed, 0 failed.",
        ],
    )


# --- the inputs ---------------------------------------------------------------------------


def test_required_inputs_rongcloud_does_not_fill(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, file = one(ws, dify, capsys, kind="dify_chatflow", key="DIFY_FORM")
    assert code == 1
    assert lines[:2] == [
        f"{at(file)}: error: integrations[0]: the Dify app requires the input variable(s) "
        "city, level, which RongCloud does not fill (it sends the callback's bot_* and data_* "
        "fields), so every message would fail",
        "  hint: make them optional in the app's input form, or name them after a field "
        "RongCloud fills, e.g. data_fromUserId",
    ]


def test_a_completion_app_without_query(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, file = one(ws, dify, capsys, kind="dify_completion", key="DIFY_TEXT_NO_QUERY")
    assert code == 1
    assert lines[:2] == [
        f"{at(file)}: error: integrations[0]: the Dify Text Generator app has no input "
        "variable named query; RongCloud sends the user's text as inputs.query",
        "  hint: add a text input named query to the app's input form (Dify: Orchestrate → "
        "Variables)",
    ]


# --- 429s ---------------------------------------------------------------------------------


def test_the_concurrency_limit_is_retried(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dify.hits().get("GET /v1/info", 0)
    dify.set_faults(busy=2)
    code, lines, _ = one(ws, dify, capsys, kind="dify_chat", key="DIFY_CHAT")
    assert (code, lines[0]) == (0, 'demo/b dify_chat: passed (Chatbot app "Helper")')
    assert dify.hits()["GET /v1/info"] - before == 3


def test_a_concurrency_limit_that_lasts_fails_after_the_retries(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    dify.set_faults(busy=100)
    code, lines, file = one(ws, dify, capsys, kind="dify_chat", key="DIFY_CHAT")
    assert code == 1
    assert lines[:2] == [
        f"{at(file)}: error: integrations[0]: Dify kept answering GET /info with HTTP 429 "
        "too_many_requests: Too many requests. Please try again later. (Dify stand-in: the "
        "busy fault)",
        "  hint: too many requests at once for this app: try again later, or raise the app's "
        "concurrency limit in Dify",
    ]


def test_a_quota_is_never_retried(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dify.hits().get("GET /v1/info", 0)
    dify.set_faults(quota=True)
    code, lines, file = one(ws, dify, capsys, kind="dify_chat", key="DIFY_CHAT")
    assert code == 1
    assert lines[:2] == [
        f"{at(file)}: error: integrations[0]: Dify answered GET /info with HTTP 429 "
        "rate_limit_error: You have reached the rate limit of your plan. (Dify stand-in: the "
        "quota fault)",
        "  hint: the Dify plan's quota is used up: wait for it to renew or upgrade the plan",
    ]
    assert dify.hits()["GET /v1/info"] - before == 1


# --- unreachable, garbage, hangs ----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_dify_on_a_local_app(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    file = ws.bot("b", kind="dify_chat", url=url, key_var="DIFY_CHAT")
    code, out, _ = check(capsys)
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{at(file, 'callbackUrl')}: error: integrations[0].callbackUrl: GET /info: cannot "
        "connect to 127.0.0.1",
        "  hint: start the Dify this callbackUrl names on this machine, or fix the URL",
    ]


def test_a_real_endpoint_flags_addresses_rongcloud_cannot_reach(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.app("prod", endpoint="cn")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    file = ws.bot("b", kind="dify_chat", url=url, key_var="DIFY_CHAT", app="prod")
    code, out, _ = check(capsys, "prod")
    assert code == 1
    assert out.splitlines()[:4] == [
        f"{at(file, 'callbackUrl')}: warning: integrations[0].callbackUrl: {url} is a "
        "loopback address: this machine may reach it, RongCloud's servers cannot",
        "  hint: RongCloud calls Dify from its data center: give callbackUrl a public "
        "https:// address of the Dify API",
        f"{at(file, 'callbackUrl')}: error: integrations[0].callbackUrl: GET /info: cannot "
        "connect to 127.0.0.1",
        "  hint: check callbackUrl and the network; RongCloud's servers, not only this "
        "machine, must reach this URL",
    ]


@pytest.mark.parametrize(
    ("behaviour", "message", "hint"),
    [
        (
            {"info": "html"},
            "the answer to GET /info is not Dify's (not a JSON object)",
            "check that callbackUrl is the Dify API base ending in /v1 (e.g. "
            "https://api.dify.ai/v1), not a proxy, a login page or another service",
        ),
        (
            {"info": "list"},
            "the answer to GET /info is not Dify's (not a JSON object)",
            "check that callbackUrl is the Dify API base ending in /v1 (e.g. "
            "https://api.dify.ai/v1), not a proxy, a login page or another service",
        ),
        (
            {"info": "huge"},
            "the answer to GET /info (HTTP 200) is longer than 1 MiB (not read past that)",
            "check that callbackUrl is the Dify API base ending in /v1 (e.g. "
            "https://api.dify.ai/v1), not a proxy, a login page or another service",
        ),
        (
            {"info": "envelope"},
            "Dify answered GET /info with HTTP 500 internal_server_error: boom",
            "Dify failed internally: see its status page or logs, then try again",
        ),
        (
            {"info": 'json:{"mode": "chat"}', "parameters": "json:{}"},
            "the answer to GET /parameters has no user_input_form list",
            "check that callbackUrl is the Dify API base ending in /v1, not a proxy or "
            "another service",
        ),
    ],
)
def test_garbage_answers(
    ws: CheckWorkspace,
    capsys: pytest.CaptureFixture[str],
    behaviour: dict[str, str],
    message: str,
    hint: str,
) -> None:
    with Misbehaving(behaviour) as server:
        file = ws.bot("b", kind="dify_chat", url=server.api_base, key_var="DIFY_CHAT")
        code, out, _ = check(capsys)
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{at(file, 'callbackUrl')}: error: integrations[0].callbackUrl: {message}",
        f"  hint: {hint}",
    ]


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ({"info": "hang"}, "GET /info: no answer from 127.0.0.1 within 1 s"),
        ({"info": "trickle"}, "Dify's answer to GET /info did not end in time"),
    ],
)
def test_a_hanging_server_times_out(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], behaviour: dict[str, str], message: str
) -> None:
    with Misbehaving(behaviour) as server:
        file = ws.bot("b", kind="dify_chat", url=server.api_base, key_var="DIFY_CHAT")
        code, out, _ = check(capsys, "--timeout", "1")
    assert code == 1
    assert out.splitlines()[0] == (
        f"{at(file, 'callbackUrl')}: error: integrations[0].callbackUrl: {message}"
    )


def test_an_unknown_mode_cannot_be_verified(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    behaviour = {
        "info": 'json:{"mode": "rag-pipeline"}',
        "parameters": 'json:{"user_input_form": []}',
    }
    with Misbehaving(behaviour) as server:
        file = ws.bot("b", kind="dify_chat", url=server.api_base, key_var="DIFY_CHAT")
        code, out, _ = check(capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        f"{at(file, 'type')}: warning: integrations[0].type: Dify says the app's mode is "
        "'rag-pipeline', which provisioner does not know: whether dify_chat can call it cannot "
        "be verified"
    )


# --- endpoint: local and the stand-in of app.yaml -----------------------------------------


STAND_IN = (
    "emulator:\n"
    "  dify:\n"
    "    - {apiKey: app-local-chat, mode: chat, name: Local}\n"
    "    - {apiKey: '${DIFY_FLOW}', mode: advanced-chat, name: Local flow}\n"
)


def test_a_local_app_reaches_its_stand_in_instead_of_dify(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.app(extra=STAND_IN)
    monkeypatch.setenv("LOCAL_KEY", "app-local-chat")
    ws.bot("a", kind="dify_chat", url="https://api.dify.ai/v1", key_var="LOCAL_KEY")
    ws.bot("b", kind="dify_chatflow", url="https://dify.example.com/v1", key_var="DIFY_FLOW")
    code, out, _ = check(capsys)
    assert (code, out.splitlines()) == (
        0,
        [
            'demo/a dify_chat: passed (Chatbot app "Local")',
            'demo/b dify_chatflow: passed (Chatflow app "Local flow")',
            "Checked 2 Dify integrations: 2 passed, 0 failed.",
        ],
    )
    assert (ws.root / ".provisioner" / "emulator" / "demo.sqlite3").is_file()


def test_an_endpoint_variable_whose_value_is_local_reaches_the_stand_in_too(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``endpoint: ${NAME}`` with NAME=local is local for check as for plan and apply: the
    stand-in answers, and the RongCloud credentials it references need not be set."""
    ws.app(endpoint="${CHECK_ENDPOINT}", extra=STAND_IN)
    monkeypatch.setenv("CHECK_ENDPOINT", "local")
    monkeypatch.setenv("LOCAL_KEY", "app-local-chat")
    ws.bot("a", kind="dify_chat", url="https://api.dify.ai/v1", key_var="LOCAL_KEY")
    code, out, err = check(capsys)
    assert (code, out.splitlines(), err) == (
        0,
        [
            'demo/a dify_chat: passed (Chatbot app "Local")',
            "Checked 1 Dify integration: 1 passed, 0 failed.",
        ],
        "",
    )


def test_an_endpoint_variable_that_is_unset_leaves_the_app_unchecked(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whether the app is local cannot be known, so its Dify integrations are not called."""
    ws.app(endpoint="${CHECK_ENDPOINT}")
    ws.bot("a", kind="dify_chat", url="https://api.dify.ai/v1", key_var="DIFY_CHAT")
    code, out, err = check(capsys)
    assert (code, out.splitlines(), err) == (
        1,
        ["No Dify integration was checked. 1 app not checked."],
        "error: app demo: bots/demo/app.yaml:1:11: endpoint: environment variable"
        " CHECK_ENDPOINT is not set\n"
        "  hint: export CHECK_ENDPOINT=... (local, a data center or a base URL)\n",
    )


def test_a_local_app_still_fails_for_a_real_misconfiguration(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.app(extra=STAND_IN)
    monkeypatch.setenv("LOCAL_KEY", "app-not-listed")
    key_file = ws.bot("a", kind="dify_chat", url="https://api.dify.ai/v1", key_var="LOCAL_KEY")
    mode_file = ws.bot(
        "b", kind="dify_completion", url="https://api.dify.ai/v1", key_var="DIFY_FLOW"
    )
    code, out, _ = check(capsys)
    assert code == 1
    assert out.splitlines()[:4] == [
        f"{at(key_file, 'auth.apiKey')}: error: integrations[0].auth.apiKey: Dify rejected the "
        "app key (HTTP 401 unauthorized: Access token is invalid)",
        "  hint: no app of the Dify stand-in (emulator.dify in app.yaml) has the key "
        "${LOCAL_KEY} holds: set ${LOCAL_KEY} to one of their keys, or add an app with it "
        "(docs/check.md)",
        f"{at(mode_file, 'type')}: error: integrations[0].type: the Dify app is a Chatflow app "
        "(mode advanced-chat), but dify_completion calls Text Generator (completion) apps",
        "  hint: use type: dify_chatflow for this app, or set auth.apiKey to the key of a Text "
        "Generator (completion) app",
    ]


def test_a_local_app_without_a_stand_in_calls_nothing_off_the_machine(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    file = ws.bot("a", kind="dify_chat", url="https://api.dify.ai/v1", key_var="DIFY_CHAT")
    code, out, _ = check(capsys)
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{at(file, 'callbackUrl')}: error: integrations[0].callbackUrl: endpoint: local calls "
        "no Dify outside this machine, and app.yaml lists no Dify stand-in app (emulator.dify)",
        "  hint: list the app under emulator.dify in app.yaml (apiKey: ${DIFY_CHAT}, mode: ...;"
        " see docs/check.md), or point callbackUrl at a Dify on this machine",
    ]


def test_stand_in_apps_sharing_a_key_are_refused_for_that_app_only(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app(
        extra="emulator:\n  dify:\n    - {apiKey: k1, mode: chat}\n    - {apiKey: k1, mode: chat}\n"
    )
    ws.app("other")
    ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_CHAT", app="other")
    code, out, err = check(capsys)
    assert code == 1
    assert out.splitlines() == [
        'other/b dify_chat: passed (Chatbot app "Helper")',
        "Checked 1 Dify integration: 1 passed, 0 failed. 1 app not checked.",
    ]
    assert err == (
        "error: app demo: Dify stand-in apps 0 (k1) and 1 (k1) have the same key\n"
        "  hint: a key names one app: give each stand-in app its own variable\n"
    )


# --- manifests that do not load, formats ----------------------------------------------------


def test_an_unset_key_variable_is_reported_and_fails(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    file = ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="NOT_SET_ANYWHERE")
    code, out, _ = check(capsys)
    assert (code, out.splitlines()) == (
        1,
        [
            f"{at(file, 'auth.apiKey')}: error: integrations[0].auth.apiKey: environment "
            "variable NOT_SET_ANYWHERE is not set",
            "  hint: export NOT_SET_ANYWHERE=... before running, or pass it as a CI secret",
            "demo: not checked: its manifests have errors",
            "No Dify integration was checked. 1 app not checked.",
        ],
    )


def test_github_format(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    file = ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_UNKNOWN")
    code, out, _ = check(capsys, "--format", "github")
    line, column = 9, 20
    assert (code, out) == (
        1,
        f"::error file={file},line={line},col={column},title=dify-key-rejected::"
        "integrations[0].auth.apiKey: Dify rejected the app key (HTTP 401 unauthorized%3A "
        "Access token is invalid)%0Ahint: set ${DIFY_UNKNOWN} to the key on the app's API "
        "Access page in Dify (a knowledge-base key does not work)\n".replace("%3A", ":"),
    )


def test_json_format(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    file = ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_OLD")
    code, out, _ = check(capsys, "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["passed"] is True and document["unchecked"] == []
    assert [d["code"] for d in document["diagnostics"]] == ["dify-mode-unknown"]
    assert document["integrations"] == [
        {
            "app": "demo",
            "userId": "b",
            "type": "dify_chat",
            "file": file,
            "line": 6,
            "column": 5,
            "passed": True,
            "dify": {"name": "Old", "mode": None},
        }
    ]


# --- --converse ---------------------------------------------------------------------------


def conversed(lines: list[str]) -> list[str]:
    """The output without the timings (they vary)."""
    return [
        re.sub(r" \(first token after \d+ ms\)$", " (first token after N ms)", x) for x in lines
    ]


def test_converse_blocking_keeps_the_conversation(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_CHAT", stream=False)
    code, out, _ = check(capsys, "--converse")
    lines = out.splitlines()
    [conversation] = [c for c in dify.conversations("provisioner-preflight") if c["turns"] == 2][
        -1:
    ]
    assert (code, lines) == (
        0,
        [
            'demo/b dify_chat: passed (Chatbot app "Helper")',
            '  1. "Hello! This is provisioner check: the first of two test mes…" → "Helper '
            '(turn 1): you said “Hello! This is provisioner check…"',
            '  2. "Second test message from provisioner check: do you remember…" → "Helper '
            '(turn 2): you said “Second test message from provisi…"',
            f"  conversation kept (conversation_id {conversation['id']})",
            "Checked 1 Dify integration: 1 passed, 0 failed.",
        ],
    )
    [first, second] = [r for r in dify.received() if r["app"] == "Helper"][-2:]
    assert (first["response_mode"], first["conversation_id"]) == ("blocking", "")
    assert second["conversation_id"] == conversation["id"]
    assert first["inputs"] == {
        "type": "message:private",
        "timestamp": first["inputs"]["timestamp"],
        "bot_userId": "b",
        "bot_name": "Helper",
        "bot_profileUrl": "https://example.com/robot.png",
        "bot_type": "Message AI",
        "data_fromUserId": "provisioner-preflight",
        "data_toUserId": "b",
        "data_objectName": "RC:TxtMsg",
        "data_content": '{"content": "Hello! This is provisioner check: the first of two test '
        'messages.", "extra": ""}',
        "data_channelType": "PERSON",
    }


@pytest.mark.parametrize(
    ("kind", "key", "answer"),
    [
        (
            "dify_chatflow",
            "DIFY_FLOW",
            "Flow (turn 1): you said “Hello! This is provisioner check: …",
        ),
        ("dify_chat", "DIFY_AGENT", "Agent (turn 1): you said “Hello! This is provisioner check:…"),
    ],
)
def test_converse_streaming_reports_the_first_token(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    answer: str,
) -> None:
    ws.bot("b", kind=kind, url=dify.api_base, key_var=key)
    code, out, _ = check(capsys, "--converse")
    lines = conversed(out.splitlines())
    assert code == 0
    assert lines[1] == (
        f'  1. "Hello! This is provisioner check: the first of two test mes…" → "{answer}" '
        "(first token after N ms)"
    )
    assert lines[2].endswith("(first token after N ms)") and "(turn 2)" in lines[2]
    assert lines[3].startswith("  conversation kept (conversation_id ")


def test_converse_completion_has_no_conversation(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.bot("b", kind="dify_completion", url=dify.api_base, key_var="DIFY_TEXT", stream=False)
    code, out, _ = check(capsys, "--converse", "--format", "json")
    [integration] = json.loads(out)["integrations"]
    assert code == 0
    assert integration["conversation"]["kept"] is None
    answers = [m["answer"] for m in integration["conversation"]["messages"]]
    assert [answer.split(":")[0] for answer in answers] == [
        "Writer (request 1 from this user)",
        "Writer (request 2 from this user)",
    ]
    last = [r for r in dify.received() if r["app"] == "Writer"][-1]
    assert last["inputs"]["query"] == last["query"]


def test_converse_an_error_event_mid_stream_fails(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    file = ws.bot("b", kind="dify_chatflow", url=dify.api_base, key_var="DIFY_FLOW")
    dify.set_faults(stream_error=True)
    code, out, _ = check(capsys, "--converse")
    assert code == 1
    assert out.splitlines() == [
        f"{at(file)}: error: integrations[0]: message 1 of 2 failed: Dify reported an error in "
        "the middle of the stream from POST /chat-messages (after HTTP 200): "
        "completion_request_error: The model failed in the middle of the answer. (Dify "
        "stand-in: stream_error)",
        "  hint: see the app's logs in Dify (model provider, quota, workflow nodes)",
        'demo/b dify_chatflow: failed (1 error; Chatflow app "Flow")',
        "Checked 1 Dify integration: 0 passed, 1 failed.",
    ]


def test_converse_runs_only_after_the_pre_flight_passed(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dify.hits().get("POST /v1/chat-messages", 0)
    ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_DRAFT")
    code, _, _ = check(capsys, "--converse")
    assert code == 1
    assert dify.hits().get("POST /v1/chat-messages", 0) == before


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            'json:{"answer": "hi"}',
            "the answer to message 1 of 2 names no conversation_id, so RongCloud cannot "
            "continue the conversation",
        ),
        (
            'json:{"answer": " ", "conversation_id": "c1"}',
            "message 1 of 2 got an empty answer from Dify",
        ),
        (
            'json:{"result": "hi"}',
            "message 1 of 2 failed: Dify's answer to POST /chat-messages holds no answer text",
        ),
        (
            "hang",
            "message 1 of 2 failed: POST /chat-messages: no answer from 127.0.0.1 within 1 s",
        ),
    ],
)
def test_converse_with_odd_answers(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], answer: str, message: str
) -> None:
    behaviour = {
        "info": 'json:{"mode": "chat", "name": "Odd"}',
        "parameters": 'json:{"user_input_form": []}',
        "chat-messages": answer,
    }
    with Misbehaving(behaviour) as server:
        file = ws.bot("b", kind="dify_chat", url=server.api_base, key_var="DIFY_CHAT", stream=False)
        code, out, _ = check(capsys, "--converse", "--timeout", "1")
    assert code == 1
    assert out.splitlines()[0] == f"{at(file)}: error: integrations[0]: {message}"
