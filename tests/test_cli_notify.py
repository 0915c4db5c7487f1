"""`apply`, `drift`, `github apply` and `github drift` notify end to end: the real CLI against
the emulator, the loopback robots of tests/notify_receivers.py and (for the github commands)
the GitHub stand-in. A robot that refuses or does not answer is a warning; the exit status
stays what the run made it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from tests.apply_support import ENV, Workspace, enter_workspace
from tests.github_world import GIT_STATE, MERGE, SECRETS, World, merged_and_applied, open_pull
from tests.notify_receivers import DingTalk, Feishu, Webhook, WeCom

DING_SECRET = "SECcli-dingtalk-secret-31a2"
FEISHU_SECRET = "cli-feishu-secret-77b1"
NOTIFY = (
    "notify:\n"
    "  - {type: dingtalk, url: '${DING_URL}', secret: '${DING_SECRET}'}\n"
    "  - {type: feishu, url: '${FEISHU_URL}', secret: '${FEISHU_SECRET}', when: [drift, failure]}\n"
    "  - {type: wecom, url: '${WECOM_URL}', when: [apply]}\n"
    "  - {type: webhook, url: '${HOOK_URL}'}\n"
)


@pytest.fixture
def robots() -> Iterator[dict[str, Any]]:
    with (
        DingTalk(secret=DING_SECRET) as ding,
        Feishu(secret=FEISHU_SECRET) as feishu,
        WeCom() as wecom,
        Webhook() as hook,
    ):
        yield {"dingtalk": ding, "feishu": feishu, "wecom": wecom, "webhook": hook}


def robot_env(robots: dict[str, Any]) -> dict[str, str]:
    return {
        "DING_URL": robots["dingtalk"].url,
        "DING_SECRET": DING_SECRET,
        "FEISHU_URL": robots["feishu"].url,
        "FEISHU_SECRET": FEISHU_SECRET,
        "WECOM_URL": robots["wecom"].url,
        "HOOK_URL": robots["webhook"].url,
        "PROVISIONER_RETRY_BACKOFF": "0",
    }


@pytest.fixture
def ws(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: EmulatorServer,
    robots: dict[str, Any],
) -> Workspace:
    env = {"NO_COLOR": "1", **ENV, **robot_env(robots)}
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, env)
    workspace.app(extra=NOTIFY)
    workspace.bot("assistant-bot", name="Assistant")
    workspace.bot("helper-bot", name="Helper")
    return workspace


def events(robots: dict[str, Any]) -> dict[str, list[str]]:
    """Per robot, the event of each message it took (from the webhook's document, the
    titles of the others)."""
    found: dict[str, list[str]] = {}
    for name, robot in robots.items():
        titles = [_title(name, message) for message in robot.accepted]
        found[name] = titles
    return found


def _title(name: str, message: dict[str, Any]) -> str:
    if name == "dingtalk":
        return str(message["markdown"]["title"])
    if name == "feishu":
        return str(next(iter(message["content"]["post"].values()))["title"])
    if name == "wecom":
        return str(message["markdown"]["content"].splitlines()[0].removeprefix("### "))
    return str(message["title"])


APPLIED = "provisioner: changes applied to app demo"
DRIFTED = "provisioner: drift in app demo"


def test_apply_tells_the_targets_that_want_applies(
    ws: Workspace, robots: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--auto-approve"]) == 0
    assert events(robots) == {
        "dingtalk": [APPLIED],
        "feishu": [],
        "wecom": [APPLIED],
        "webhook": [APPLIED],
    }
    (document,) = robots["webhook"].accepted
    assert document["counts"] == {"applied": 2}
    assert document["bots"] == ["assistant-bot", "helper-bot"]
    assert "warning" not in capsys.readouterr().err
    assert main(["apply", "--auto-approve"]) == 0  # no changes: nothing to say
    assert len(robots["webhook"].accepted) == 1


def test_drift_tells_what_it_found_and_keeps_its_exit_status(
    ws: Workspace, robots: dict[str, Any]
) -> None:
    assert main(["apply", "--auto-approve"]) == 0
    assert main(["drift"]) == 0  # clean: nothing to say
    ws.remove_bot("helper-bot")
    assert main(["drift"]) == 2
    assert events(robots)["feishu"] == [DRIFTED]
    drift = robots["webhook"].accepted[-1]
    assert (drift["event"], drift["counts"], drift["bots"]) == (
        "drift",
        {"pending": 1},
        ["helper-bot"],
    )


def test_a_refusing_or_silent_robot_is_a_warning_and_the_exit_status_stays(
    ws: Workspace,
    robots: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DING_SECRET", "SECnot-the-robots-secret")
    monkeypatch.setenv("PROVISIONER_NOTIFY_TIMEOUT", "0.3")
    robots["wecom"].delay_next(2, 30.0)
    assert main(["apply", "--auto-approve"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: app demo: could not notify notify[0] (dingtalk): it refused the message:"
        " errcode 310000 (sign not match, more:"
        " [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq])\n"
    ) in err
    assert "warning: app demo: could not notify notify[2] (wecom): no answer within 0.3 s\n" in err
    assert len(robots["wecom"].requests) == 2
    assert events(robots)["webhook"] == [APPLIED]
    ws.remove_bot("helper-bot")
    robots["webhook"].refuse_next(2, 500, {"error": "down"})
    assert main(["drift"]) == 2
    assert "could not notify notify[3] (webhook): it refused the message: HTTP 500" in (
        capsys.readouterr().err
    )


def test_a_failed_apply_is_a_failure_message(
    ws: Workspace, robots: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RC_SECRET", "not-the-app-secret-at-all")
    assert main(["apply", "--auto-approve"]) == 1
    assert events(robots)["feishu"] == ["provisioner: app demo failed"]
    (document,) = robots["webhook"].accepted
    assert document["event"] == "failure"
    assert document["error"]


def test_chinese_messages_with_provisioner_lang(
    ws: Workspace, robots: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVISIONER_LANG", "zh-CN")
    assert main(["apply", "--auto-approve"]) == 0
    (message,) = robots["dingtalk"].accepted
    assert message["markdown"]["title"] == "provisioner：应用 demo 的变更已应用"
    assert "- **统计**: 2 个已应用\n" in message["markdown"]["text"]


def test_an_unset_notify_variable_never_stops_an_apply(
    ws: Workspace,
    robots: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("WECOM_URL")
    assert main(["apply", "--auto-approve"]) == 0
    assert (
        "warning: app demo: could not notify notify[2] (wecom): environment variable"
        " WECOM_URL is not set\n"
    ) in capsys.readouterr().err
    assert events(robots)["dingtalk"] == [APPLIED]


# --- the GitHub loop ----------------------------------------------------------------------


def notify_world(world: World, robots: dict[str, Any]) -> dict[str, str]:
    world.both("app", extra=GIT_STATE + NOTIFY)
    return {**SECRETS, **robot_env(robots)}


def test_github_apply_and_drift_notify_with_the_run_and_the_pull_request(
    world: World, robots: dict[str, Any]
) -> None:
    secrets = notify_world(world, robots)
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull("octo/bots", number, MERGE)
    applied = world.apply(secrets=secrets)
    assert applied.code == 0, applied.log
    (document,) = robots["webhook"].accepted
    run_url = f"https://github.com/octo/bots/actions/runs/{world.run_id}"
    assert document["links"] == {
        "run": run_url,
        "pullRequest": {"number": number, "url": f"https://github.com/octo/bots/issues/{number}"},
    }
    text = robots["dingtalk"].accepted[0]["markdown"]["text"]
    assert f"[Pull request #{number}](https://github.com/octo/bots/issues/{number})" in text
    world.main.remove_bot("helper-bot")
    drift = world.drift(secrets=secrets)
    assert drift.code == 2, drift.log
    assert events(robots)["feishu"] == [DRIFTED]
    assert robots["webhook"].accepted[-1]["links"]["run"].endswith(f"/runs/{world.run_id}")


def test_github_drift_with_a_refusing_robot_warns_in_an_annotation(
    world: World, robots: dict[str, Any]
) -> None:
    merged_and_applied(world)
    secrets = {**notify_world(world, robots), "FEISHU_SECRET": "wrong-feishu-secret"}
    world.main.remove_bot("helper-bot")
    drift = world.drift(secrets=secrets)
    assert drift.code == 2
    assert (
        "::warning title=provisioner::app demo: could not notify notify[1] (feishu): it refused"
        " the message: code 19021 (sign match fail or timestamp is not within one hour from"
        " current time)"
    ) in drift.out
    assert events(robots)["dingtalk"] == [DRIFTED]
