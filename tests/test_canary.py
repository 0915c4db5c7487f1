"""A canary secret never leaks: the app secret and the Dify keys are set to distinctive
strings, then plan and apply run through every output format, --debug, failures (refused
credentials, 5xx on writes, dropped connections, a stale plan) and Ctrl-C-free fault paths.
No stdout, stderr, log record, plan file, state file or lock file may contain a canary.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator.bots.profile import Profile
from tests.apply_support import (
    APP_KEY,
    FAST_RETRIES,
    Workspace,
    enter_workspace,
    live_bots,
    subprocess_env,
)
from tests.notify_receivers import DingTalk, Feishu, Webhook, WeCom

SECRET_CANARY = "CANARY-app-secret-7f3a9c41"
DIFY_CANARY = "CANARY-dify-key-2b8e6d05"
OTHER_DIFY_CANARY = "CANARY-dify-key-rotated-91c4"
WRONG_SECRET_CANARY = "CANARY-wrong-secret-44d1e0"
JOB_TOKEN_CANARY = "CANARY-ci-job-token-6a0f"
GITLAB_TOKEN_CANARY = "CANARY-gitlab-token-d21b"
CANARIES = (SECRET_CANARY, DIFY_CANARY, OTHER_DIFY_CANARY, WRONG_SECRET_CANARY)
CANARY_ENV = {
    "RC_KEY": APP_KEY,
    "RC_SECRET": SECRET_CANARY,
    "DIFY_KEY": DIFY_CANARY,
    "DIFY_OTHER": OTHER_DIFY_CANARY,
}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: SECRET_CANARY}) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, CANARY_ENV)
    workspace.bot("assistant-bot")
    workspace.bot("helper-bot", dify_var="DIFY_OTHER")
    return workspace


class Outputs:
    """Everything the runs printed, with their exit codes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: list[str] = []

    def run(self, *args: str, env: dict[str, str] | None = None) -> int:
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", *args],
            cwd=self.root,
            env=subprocess_env(self.root, {**CANARY_ENV, **FAST_RETRIES, **(env or {})}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.texts += [result.stdout, result.stderr]
        return result.returncode


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked into {where}"


def test_no_canary_in_any_output_stream_file_or_log(
    ws: Workspace,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = Outputs(ws.root)
    assert out.run("--debug", "plan") == 0
    assert out.run("--debug", "plan", "--format", "json") == 0
    assert out.run("--debug", "plan", "--format", "markdown", "--out", "plan.json") == 0
    assert out.run("--debug", "apply", "--format", "json", "--plan", "plan.json") == 0
    assert out.run("--debug", "plan", "--format", "json") == 0  # no changes now

    ws.bot("assistant-bot", name="Renamed")
    assert out.run("--debug", "apply", "--plan", "plan.json") == 1  # stale plan
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh") == 0

    # Failures: refused credentials (the wrong secret is a canary too), 5xx on every write,
    # commit-then-drop, and an adoption of a bot that lost its record.
    ws.bot("helper-bot", name="Renamed too", dify_var="DIFY_OTHER")
    wrong = {"RC_SECRET": WRONG_SECRET_CANARY}
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh", env=wrong) == 4
    assert out.run("--debug", "apply", "--auto-approve", env=wrong) == 1
    server.set_faults(error_rate=1.0)  # every read back retries (10 ms backoff): one run only
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh") == 4
    server.set_faults(error_rate=0.0, drop_after_commit=1.0)
    assert out.run("--debug", "apply", "--auto-approve") == 0
    server.set_faults(drop_after_commit=0.0)
    ws.state_path().unlink()
    assert out.run("--debug", "plan", "--format", "markdown") == 0
    assert out.run("--debug", "drift") == 2  # lost records: the bots are unmanaged
    assert out.run("--debug", "apply", "--auto-approve") == 0
    assert out.run("--debug", "drift", "--format", "json") == 0

    # In-process too, with every log record captured at DEBUG.
    caplog.set_level(logging.DEBUG)
    ws.bot("assistant-bot", name="Renamed again")
    assert main(["--debug", "apply", "--auto-approve", "--format", "json"]) == 0
    assert main(["--debug", "plan", "--format", "markdown"]) == 0
    captured = capsys.readouterr()
    out.texts += [captured.out, captured.err, caplog.text]
    assert live_bots(server)["assistant-bot"].name == "Renamed again"

    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
    files = [path for path in ws.root.rglob("*") if path.is_file()]
    assert ws.root / "plan.json" in files and ws.state_path() in files
    assert ws.root / ".provisioner" / "state" / "drift" / "demo.json" in files  # drift's record
    for path in files:
        assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))
    joined = "".join(out.texts)
    assert "HTTP 401, code 1004" in joined  # the failure paths really ran
    assert "settled by reading back" in joined


# --- every field a reference can sit in, and a server that quotes its requests back ---------

FIELD_CANARIES = {
    "NAME_PART": "CANARY-name-part-31a7",
    "TYPE_PART": "CANARY-type-part-58c2",
    "AVATAR_SIG": "CANARY-avatar-sig-90be",
    "META_VALUE": "CANARY-meta-value-17df",
    "HOOK_TOKEN": "CANARY-hook-token-6e04",
    "EVENT_NAME": "CANARY-event-name-c3a9",
}
STORED_KEY = "app-CANARY-stored-key-4f1b"
"""A Dify key the server holds and quotes back, that is in no environment variable."""

EVERY_FIELD_BOT = """\
userId: echo-bot
name: "Echo ${NAME_PART}"
type: "${TYPE_PART}"
profileUrl: "https://example.com/a.png?sig=${AVATAR_SIG}"
metadata: {team: "${META_VALUE}"}
integrations:
  - type: webhook
    callbackUrl: "https://hooks.example.com/rc?token=${HOOK_TOKEN}"
    objectNames: [RC:TxtMsg]
    events: ["${EVENT_NAME}"]
  - type: dify_chat
    callbackUrl: https://api.dify.ai/v1
    auth: {apiKey: "${DIFY_KEY}"}
"""


class EchoingApi:
    """A RongCloud stand-in on loopback that refuses every write with an undocumented code and
    quotes the whole request body, and a stored key, in its errorMessage; query and get list
    one unmanaged bot holding that stored key."""

    def __init__(self) -> None:
        import json as _json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stored = {
            "userId": "theirs",
            "name": "Theirs",
            "type": "t",
            "profileUrl": "https://example.com/t.png",
            "integrations": [
                {
                    "type": "dify_chat",
                    "callbackUrl": "https://api.dify.ai/v1",
                    "auth": {"apiKey": STORED_KEY},
                }
            ],
        }

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if self.path.endswith(("/query.json", "/get.json")):
                    bots = [stored] if self.path.endswith("query.json") else []
                    answer = {"code": 200, "bots": bots, "total": len(bots), "hasNext": False}
                    status = 200
                else:
                    message = f"refused {body} (the key on file is {STORED_KEY})"
                    answer, status = {"code": 4711, "errorMessage": message}, 400
                data = _json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_no_reference_value_in_any_field_leaks_when_the_server_quotes_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = EchoingApi()
    try:
        workspace = enter_workspace(tmp_path, api.url, monkeypatch, CANARY_ENV)
        (workspace.root / "bots" / "demo" / "echo-bot.yaml").write_text(
            EVERY_FIELD_BOT, encoding="utf-8"
        )
        out = Outputs(workspace.root)
        env = {**FIELD_CANARIES}
        assert out.run("--debug", "validate", "--require-env", env=env) == 0
        assert out.run("--debug", "plan", env=env) == 0
        assert out.run("--debug", "plan", "--format", "json", env=env) == 0
        assert out.run("--debug", "plan", "--format", "markdown", "--out", "p.json", env=env) == 0
        assert out.run("--debug", "apply", "--auto-approve", env=env) == 4
        assert out.run("--debug", "apply", "--auto-approve", "--format", "json", env=env) == 4
        assert out.run("--debug", "drift", "--format", "json", env=env) == 2
        assert out.run("--debug", "drift", env=env) == 2
    finally:
        api.close()
    joined = "".join(out.texts)
    assert "refused" in joined and "(sensitive)" in joined  # the echo really came back
    assert "theirs" in joined  # the stored key's bot was listed (as unmanaged)
    secrets = (*CANARIES, *FIELD_CANARIES.values(), STORED_KEY)
    for number, text in enumerate(out.texts):
        for canary in secrets:
            assert canary not in text, f"{canary} leaked into output stream #{number}"
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for canary in secrets:
            assert canary not in text, f"{canary} leaked into {path}"


DSN_CANARY = "CANARY-dsn-password-5a9e"


def test_no_dsn_password_in_any_output_or_file_of_the_postgres_backend(
    ws: Workspace, server: EmulatorServer, request: pytest.FixtureRequest
) -> None:
    """The DSN is a secret: its password (a canary) never reaches an output stream, a log,
    the state, the unsaved file or an error, with --debug, whether the login works or not."""
    from tests.postgres_support import PASSWORD_USER, Cluster
    from tests.state_support import close_opened

    cluster: Cluster = request.getfixturevalue("pg_cluster")
    schema = request.getfixturevalue("pg_schema")
    request.addfinalizer(close_opened)
    ws.app(extra=f'state: {{backend: postgres, dsn: "${{STATE_DSN}}", schema: {schema}}}\n')
    good = {"STATE_DSN": cluster.dsn(password=DSN_CANARY)}  # trusted role: password unused
    wrong = {"STATE_DSN": cluster.dsn(user=PASSWORD_USER, password=DSN_CANARY)}
    out = Outputs(ws.root)
    assert out.run("--debug", "plan", "--format", "json", env=good) == 0
    assert out.run("--debug", "apply", "--auto-approve", env=good) == 0
    assert out.run("--debug", "state", "show", "--format", "json", env=good) == 0
    assert out.run("--debug", "state", "pull", "demo", env=good) == 0
    assert out.run("--debug", "plan", env=wrong) == 1
    assert out.run("--debug", "apply", "--auto-approve", env=wrong) == 1
    assert out.run("--debug", "state", "unlock", "demo", env=wrong) == 1
    joined = "".join(out.texts)
    assert DSN_CANARY not in joined
    assert "password authentication failed" in joined
    for path in (p for p in ws.root.rglob("*") if p.is_file()):
        assert DSN_CANARY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_no_gitlab_token_in_any_output_or_file_of_the_gitlab_backend(
    ws: Workspace, server: EmulatorServer, request: pytest.FixtureRequest
) -> None:
    """The job token and the write token (canaries) never reach an output stream, a log, the
    state, a lock ID or an error, with --debug, whether GitLab takes them or not."""
    from tests.gitlab_state_fake import GitLabStateFake

    fake: GitLabStateFake = request.getfixturevalue("gitlab_state")
    fake.add_token(JOB_TOKEN_CANARY, "dev-alice", "developer", job=True)
    fake.add_token(GITLAB_TOKEN_CANARY, "project_42_bot", "maintainer")
    ws.app(extra="state: {backend: gitlab}\n")
    runner = {"GITLAB_CI": "true", "CI_PROJECT_ID": "42", "CI_API_V4_URL": fake.api_url}
    good = {
        **runner,
        "CI_JOB_TOKEN": JOB_TOKEN_CANARY,
        "PROVISIONER_GITLAB_TOKEN": GITLAB_TOKEN_CANARY,
    }
    wrong = {
        **runner,
        "CI_JOB_TOKEN": JOB_TOKEN_CANARY + "x",
        "PROVISIONER_GITLAB_TOKEN": GITLAB_TOKEN_CANARY + "x",
    }
    out = Outputs(ws.root)
    assert out.run("--debug", "plan", "--format", "json", env=good) == 0
    assert out.run("--debug", "apply", "--auto-approve", env=good) == 0
    assert out.run("--debug", "state", "show", "--format", "json", env=good) == 0
    assert out.run("--debug", "state", "pull", "demo", env=good) == 0
    assert out.run("--debug", "plan", env=wrong) == 1
    assert out.run("--debug", "apply", "--auto-approve", env=wrong) == 1
    assert out.run("--debug", "state", "unlock", "demo", env=wrong) == 1
    joined = "".join(out.texts)
    assert "GitLab answered 401 (401 Unauthorized)" in joined
    for canary in (JOB_TOKEN_CANARY, GITLAB_TOKEN_CANARY):
        assert canary not in joined
        for path in (p for p in ws.root.rglob("*") if p.is_file()):
            assert canary not in path.read_text(encoding="utf-8", errors="replace"), path
    state = fake.state("demo")
    assert state is not None
    for document in state.versions.values():
        assert JOB_TOKEN_CANARY.encode() not in document
        assert GITLAB_TOKEN_CANARY.encode() not in document


def test_no_canary_in_export_api_or_sign_outputs(ws: Workspace, server: EmulatorServer) -> None:
    """export (without --secrets-to), api and sign APP over bots holding canary Dify keys."""
    out = Outputs(ws.root)
    assert out.run("apply", "--auto-approve") == 0
    assert out.run("--debug", "export", "demo", "--merge") == 0
    export = ["--debug", "export", "copy", "--endpoint", server.url]
    assert out.run(*export, "--app-key-var", "RC_KEY", "--app-secret-var", "RC_SECRET") == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{}") == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/get.json", '{"userIds": ["helper-bot"]}') == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/delete.json", '{"userId": "nobody"}') == 1
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{oops") == 1
    assert out.run("--debug", "sign", "demo") == 0
    assert out.run("--debug", "sign", "demo", "--format", "curl", "/v3/bot/query.json") == 0
    wrong = {"RC_SECRET": WRONG_SECRET_CANARY}
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{}", env=wrong) == 1
    assert out.run("--debug", "export", "demo", "--merge", env=wrong) == 1
    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))
    assert (ws.root / "bots/copy/assistant-bot.yaml").is_file()
    joined = "".join(out.texts)
    assert "Signature: " in joined and "(sensitive)" in joined


BUNDLE_CANARY = "CANARY-bundle-value-6b0f2d"


def test_no_canary_in_github_secrets_or_a_bundle_error(ws: Workspace) -> None:
    """`github secrets` with a bundle holding canaries (names only, ever), and bundles that
    are malformed around a canary (the error names the line, never its text)."""
    ws.bot("hr-bot", dify_var="DIFY_HR")
    out = Outputs(ws.root)
    good = {"PROVISIONER_SECRETS": f"DIFY_HR='{BUNDLE_CANARY}'\nRC_SECRET={SECRET_CANARY}\n"}
    assert out.run("--debug", "github", "secrets", env=good) == 0
    assert out.run("--debug", "github", "secrets", "--format", "json", env=good) == 0
    in_actions = {**good, "GITHUB_ACTIONS": "true"}
    assert out.run("--debug", "github", "secrets", env=in_actions) == 0
    masks = out.texts.pop(-2)
    assert f"::add-mask::{BUNDLE_CANARY}\n" in masks  # the runner's masks: the one exception
    shown = "".join(line for line in masks.splitlines(True) if not line.startswith("::add-mask::"))
    assert_no_canary(shown, "the masked run")
    assert BUNDLE_CANARY not in shown
    for broken in (
        f"DIFY_HR={BUNDLE_CANARY}\n{BUNDLE_CANARY}\n",
        f'DIFY_HR="{BUNDLE_CANARY}\\q"\n',
        f"DIFY_HR='{BUNDLE_CANARY}\n",
        f"{BUNDLE_CANARY}=x\n",
        f"DIFY_HR={BUNDLE_CANARY} #x\n",
    ):
        assert out.run("--debug", "github", "secrets", env={"PROVISIONER_SECRETS": broken}) == 1
    joined = "".join(out.texts)
    assert "DIFY_HR" in joined and "PROVISIONER_SECRETS, line 2: expected NAME=value" in joined
    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
        assert BUNDLE_CANARY not in text, f"the bundle's canary leaked into stream #{number}"


NOTIFY_CANARIES = {
    "ding_token": "CANARY-ding-token-5e1f77",
    "ding_secret": "SECCANARY-ding-secret-0c9a",
    "wrong_sign": "SECCANARY-wrong-sign-9e8f",
    "feishu_token": "CANARY-feishu-token-8d2b",
    "feishu_secret": "CANARY-feishu-secret-3f7e",
    "wecom_key": "CANARY-wecom-key-6a4c11",
    "hook_secret": "CANARY-hook-secret-2b1d",
    "closed": "CANARY-closed-path-1a2b",
}
NOTIFY_TARGETS = (
    "notify:\n"
    "  - {type: dingtalk, url: '${DING_URL}', secret: '${DING_SECRET}'}\n"
    "  - {type: dingtalk, url: '${DING_URL}', secret: '${WRONG_SIGN}'}\n"
    "  - {type: feishu, url: '${FEISHU_URL}', secret: '${FEISHU_SECRET}'}\n"
    "  - {type: wecom, url: '${WECOM_URL}'}\n"
    "  - {type: webhook, url: '${HOOK_URL}', secret: '${HOOK_SECRET}'}\n"
    "  - {type: webhook, url: '${CLOSED_URL}'}\n"
)


def test_no_canary_in_notifications_their_warnings_or_logs(
    ws: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Robot tokens and signing secrets (webhook addresses are secrets) never reach a payload,
    a warning, a log record or a file — not even when a robot quotes the request in its error
    or a target cannot be reached."""
    caplog.set_level(logging.DEBUG)
    c = NOTIFY_CANARIES
    with (
        DingTalk(token=c["ding_token"], secret=c["ding_secret"]) as ding,
        Feishu(token=c["feishu_token"], secret=c["feishu_secret"]) as feishu,
        WeCom(key=c["wecom_key"]) as wecom,
        Webhook(secret=c["hook_secret"]) as hook,
    ):
        with Webhook() as gone:
            closed = f"{gone.url}/{c['closed']}"
        env = {
            "DING_URL": ding.url,
            "DING_SECRET": c["ding_secret"],
            "WRONG_SIGN": c["wrong_sign"],
            "FEISHU_URL": feishu.url,
            "FEISHU_SECRET": c["feishu_secret"],
            "WECOM_URL": wecom.url,
            "HOOK_URL": hook.url,
            "HOOK_SECRET": c["hook_secret"],
            "CLOSED_URL": closed,
            "PROVISIONER_RETRY_BACKOFF": "0",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        ws.app(extra=NOTIFY_TARGETS)
        quoted = {"errcode": 310000, "errmsg": f"sign not match: {c['ding_token']}"}
        wecom.refuse_next(2, 200, {"errcode": 93000, "errmsg": f"invalid webhook url {wecom.url}"})
        assert main(["--debug", "apply", "--auto-approve"]) == 0
        ws.remove_bot("helper-bot")
        ding.refuse_next(1, 200, quoted)
        assert main(["--debug", "drift"]) == 2
        bodies = [r.body.decode() for each in (ding, feishu, wecom, hook) for r in each.requests]
        assert [len(each.accepted) for each in (ding, feishu, hook)] == [1, 2, 2]
    captured = capsys.readouterr()
    assert "could not notify notify[1] (dingtalk): it refused the message: errcode 310000" in (
        captured.err
    )
    assert "could not notify notify[5] (webhook): the connection failed" in captured.err
    assert "notify[0] (dingtalk): it refused the message: errcode 310000 (sign not match:" in (
        captured.err
    )
    assert "notify[3] (wecom): it refused the message: errcode 93000 (invalid webhook url" in (
        captured.err
    )
    texts = [captured.out, captured.err, caplog.text, *bodies]
    texts += [p.read_text("utf-8", "replace") for p in ws.root.rglob("*") if p.is_file()]
    for number, text in enumerate(texts):
        assert_no_canary(text, f"text #{number}")
        for name, canary in NOTIFY_CANARIES.items():
            assert canary not in text, f"{name} leaked into text #{number}"


def test_no_canary_in_probe_or_not_converged_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """probe (its report and --out file, a refused run) and an apply that does not converge
    (an emulator that patches: a Dify integration and objectNames dropped from a manifest)."""
    patch = Profile().changed("canary", update_omitted_fields="patch", bot_quota="error:4711")
    with EmulatorServer(apps={APP_KEY: SECRET_CANARY}, profile=patch) as patching:
        ws = enter_workspace(tmp_path, patching.url, monkeypatch, CANARY_ENV)
        ws.bot("assistant-bot")
        out = Outputs(ws.root)
        assert out.run("apply", "--auto-approve") == 0
        assert out.run("--debug", "probe", "demo", "--yes", "--out", "probe.json") == 0
        assert out.run("--debug", "probe", "demo") == 1
        text = (ws.root / "bots/demo/assistant-bot.yaml").read_text(encoding="utf-8")
        dropped = text.split("  - type: dify_chatflow")[0].replace(
            "    objectNames: [RC:TxtMsg]\n", ""
        )
        (ws.root / "bots/demo/assistant-bot.yaml").write_text(dropped, encoding="utf-8")
        assert out.run("--debug", "apply", "--auto-approve", "--format", "json") == 4
        assert out.run("--debug", "apply", "--auto-approve") == 4
    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))
    joined = "".join(out.texts)
    assert '"bot_quota": "error:4711"' in joined and "not converged: " in joined


# --- the API trace (PROVISIONER_LOG=debug, --log-file) ----------------------------------------

TRACE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} provisioner\.http: POST 127\.0\.0\.1:\d+"
    r"/v3/bot/(\w+)\.json (\d{3}|\w+Error) request_id=[0-9a-f]{32} duration_ms=\d+ attempt=(\d)$"
)


def test_the_api_trace_has_one_line_per_call_and_no_canary(
    ws: Workspace, server: EmulatorServer
) -> None:
    out = Outputs(ws.root)
    trace = ws.root / "trace.log"
    assert out.run("--log-file", "trace.log", "apply", "--auto-approve") == 0
    assert out.run("--log-file", "trace.log", "drift") == 0
    wrong = {"RC_SECRET": WRONG_SECRET_CANARY, "PROVISIONER_LOG": "debug"}
    assert out.run("plan", env=wrong) == 1  # refused credentials, traced on stderr
    ws.bot("assistant-bot", name="Renamed")
    server.set_faults(error_rate=1.0)  # every call answers 5xx: the retries are traced too
    assert out.run("apply", "--auto-approve", env={"PROVISIONER_LOG": "debug"}) in (1, 4)
    server.set_faults(error_rate=0.0)

    lines = trace.read_text(encoding="utf-8").splitlines()
    parsed = [TRACE_LINE.match(line) for line in lines]
    assert all(parsed), lines
    calls = [(match[1], match[2], match[3]) for match in parsed if match]
    assert calls[0] == ("query", "200", "1")
    assert ("create", "200", "1") in calls and len(calls) >= 4  # 2 creates, then drift reads
    stderr_trace = [
        line for text in out.texts for line in text.splitlines() if "provisioner.http:" in line
    ]
    assert any(TRACE_LINE.match(line) and " 401 " in line for line in stderr_trace)
    assert any(line.endswith("attempt=2") for line in stderr_trace)
    for number, text in enumerate([*out.texts, "\n".join(lines)]):
        assert_no_canary(text, f"output #{number}")
    for line in lines + stderr_trace:  # no header, query or body: nothing but the fields
        assert TRACE_LINE.match(line) and "?" not in line and "{" not in line
