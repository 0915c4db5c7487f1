"""Notifications against the loopback stand-ins of the chat robots: each platform's signature
and payload shape as its receiver checks them, the documented refusals as warnings, one
retry, bounded waits, escaping of untrusted text, and the two languages' templates."""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.notify import NotifySettings, Summary, notify
from provisioner.notify.messages import TEMPLATES, markdown
from provisioner.notify.webhook import SIGNATURE_HEADER
from provisioner.workspace import LoadedApp, load_each
from tests.notify_receivers import (
    DINGTALK_BUSY,
    FEISHU_KEYWORDS,
    WECOM_KEY,
    DingTalk,
    Feishu,
    Webhook,
    WeCom,
)

DING_SECRET = "SECdingtalk-signing-secret-9f8e7d"
FEISHU_SECRET = "feishu-signing-secret-5a4b3c"
HOOK_SECRET = "webhook-hmac-secret-1d2c3b"
NO_WAIT = {"backoff": 0.0, "sleep": lambda _: None}
DRIFT = Summary(
    "drift",
    "demo",
    (("drifted", 1), ("unmanaged", 1)),
    ("assistant-bot", "stray-bot"),
    run_url="https://github.com/octo/bots/actions/runs/7",
)


@pytest.fixture
def receivers() -> Iterator[dict[str, Any]]:
    with (
        DingTalk(secret=DING_SECRET) as ding,
        Feishu(secret=FEISHU_SECRET) as feishu,
        WeCom() as wecom,
        Webhook(secret=HOOK_SECRET) as hook,
    ):
        yield {"dingtalk": ding, "feishu": feishu, "wecom": wecom, "webhook": hook}


def load_app(tmp_path: Path, targets: str) -> list[LoadedApp]:
    folder = tmp_path / "bots" / "demo"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text("endpoint: local\nnotify:\n" + targets, encoding="utf-8")
    return load_each(["demo"], tmp_path / "bots", env={}, require_secrets=False)


ALL_TARGETS = (
    "  - {type: dingtalk, url: '${DING_URL}', secret: '${DING_SECRET}'}\n"
    "  - {type: feishu, url: '${FEISHU_URL}', secret: '${FEISHU_SECRET}'}\n"
    "  - {type: wecom, url: '${WECOM_URL}'}\n"
    "  - {type: webhook, url: '${HOOK_URL}', secret: '${HOOK_SECRET}', when: [drift]}\n"
)


def env_for(receivers: dict[str, Any]) -> dict[str, str]:
    return {
        "DING_URL": receivers["dingtalk"].url,
        "DING_SECRET": DING_SECRET,
        "FEISHU_URL": receivers["feishu"].url,
        "FEISHU_SECRET": FEISHU_SECRET,
        "WECOM_URL": receivers["wecom"].url,
        "HOOK_URL": receivers["webhook"].url,
        "HOOK_SECRET": HOOK_SECRET,
    }


def send(
    loaded: list[LoadedApp], env: dict[str, str], summary: Summary = DRIFT, **settings: Any
) -> list[str]:
    return notify([summary], loaded, env, NotifySettings(**{**NO_WAIT, **settings}))


def test_each_platform_takes_one_signed_message_in_its_format(
    tmp_path: Path, receivers: dict[str, Any]
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    assert send(loaded, env_for(receivers)) == []
    (ding,) = receivers["dingtalk"].accepted
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == "provisioner: drift in app demo"
    assert ding["markdown"]["text"] == (
        "### provisioner: drift in app demo\n\n"
        "- **Counts**: 1 drifted, 1 unmanaged\n"
        "- **Bots**: assistant\\-bot, stray\\-bot\n\n"
        "[View the run](https://github.com/octo/bots/actions/runs/7)\n"
    )
    (feishu,) = receivers["feishu"].accepted
    assert feishu["msg_type"] == "post"
    assert feishu["content"]["post"]["en_us"] == {
        "title": "provisioner: drift in app demo",
        "content": [
            [{"tag": "text", "text": "Counts: 1 drifted, 1 unmanaged"}],
            [{"tag": "text", "text": "Bots: assistant-bot, stray-bot"}],
            [
                {
                    "tag": "a",
                    "text": "View the run",
                    "href": "https://github.com/octo/bots/actions/runs/7",
                }
            ],
        ],
    }
    (wecom,) = receivers["wecom"].accepted
    assert wecom == {"msgtype": "markdown", "markdown": {"content": ding["markdown"]["text"]}}
    (hook,) = receivers["webhook"].accepted
    assert {key: hook[key] for key in ("schema", "version", "event", "app", "counts", "bots")} == {
        "schema": "provisioner/notification",
        "version": 1,
        "event": "drift",
        "app": "demo",
        "counts": {"drifted": 1, "unmanaged": 1},
        "bots": ["assistant-bot", "stray-bot"],
    }
    assert hook["links"] == {"run": DRIFT.run_url, "pullRequest": None}
    assert receivers["webhook"].requests[0].headers["x-provisioner-event"] == "drift"
    assert receivers["webhook"].requests[0].headers[SIGNATURE_HEADER.lower()].startswith("sha256=")


def test_when_selects_the_targets_of_an_event(tmp_path: Path, receivers: dict[str, Any]) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    applied = Summary("apply", "demo", (("applied", 2),), ("a", "b"))
    assert send(loaded, env_for(receivers), applied) == []
    assert [len(receivers[name].accepted) for name in receivers] == [1, 1, 1, 0]


def test_chinese_messages_use_rongclouds_terms(tmp_path: Path, receivers: dict[str, Any]) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    assert send(loaded, env_for(receivers), lang="zh-CN") == []
    text = receivers["dingtalk"].accepted[0]["markdown"]["text"]
    assert text.startswith("### provisioner：应用 demo 发现配置漂移\n")
    assert "- **统计**: 1 个配置漂移，1 个未纳管\n" in text
    assert "- **机器人**: assistant\\-bot，stray\\-bot\n" in text
    assert "[查看运行记录](https://github.com/octo/bots/actions/runs/7)" in text
    assert list(receivers["feishu"].accepted[0]["content"]["post"]) == ["zh_cn"]


def test_the_two_languages_have_the_same_templates_and_placeholders() -> None:
    english, chinese = TEMPLATES["en"], TEMPLATES["zh-CN"]
    assert set(english) == set(chinese)
    for key, text in english.items():
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        assert names == {n for _, n, _, _ in string.Formatter().parse(chinese[key]) if n}, key
    assert all(value.startswith("provisioner") for k, value in chinese.items() if "title" in k)


@pytest.mark.parametrize(
    ("kind", "secret_var", "expected"),
    [
        (
            "dingtalk",
            "DING_SECRET",
            "it refused the message: errcode 310000 (sign not match, more:"
            " [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq])",
        ),
        (
            "feishu",
            "FEISHU_SECRET",
            "it refused the message: code 19021 (sign match fail or timestamp is not within"
            " one hour from current time)",
        ),
        ("webhook", "HOOK_SECRET", "it refused the message: HTTP 401"),
    ],
)
def test_a_wrong_secret_is_one_refused_attempt_and_a_warning(
    tmp_path: Path, receivers: dict[str, Any], kind: str, secret_var: str, expected: str
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    env = {**env_for(receivers), secret_var: "another-secret-entirely"}
    index = list(receivers).index(kind)
    warnings = send(loaded, env)
    assert warnings == [f"app demo: could not notify notify[{index}] ({kind}): {expected}"]
    assert len(receivers[kind].requests) == 1
    assert receivers[kind].accepted == []


def test_keywords_and_a_wrong_key_are_refusals_too(
    tmp_path: Path, receivers: dict[str, Any]
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    receivers["feishu"].refuse_next(1, 200, FEISHU_KEYWORDS)
    receivers["wecom"].refuse_next(1, 200, WECOM_KEY)
    assert send(loaded, env_for(receivers)) == [
        "app demo: could not notify notify[1] (feishu): it refused the message: code 19024"
        " (Key Words Not Found)",
        "app demo: could not notify notify[2] (wecom): it refused the message: errcode 93000"
        " (invalid webhook url, hint: [1700000000_0], from ip: 127.0.0.1)",
    ]


def test_a_title_keyword_passes_a_keyword_guarded_robot(tmp_path: Path) -> None:
    with DingTalk(keywords=("provisioner",)) as ding, Feishu(keywords=("provisioner",)) as feishu:
        loaded = load_app(
            tmp_path,
            "  - {type: dingtalk, url: '${A}'}\n  - {type: feishu, url: '${B}'}\n",
        )
        assert send(loaded, {"A": ding.url, "B": feishu.url}) == []
        assert len(ding.accepted) == len(feishu.accepted) == 1


def test_a_busy_answer_or_a_5xx_is_retried_once(tmp_path: Path, receivers: dict[str, Any]) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    receivers["dingtalk"].refuse_next(1, 200, DINGTALK_BUSY)
    receivers["wecom"].refuse_next(1, 503, {"errcode": -1, "errmsg": "system busy"})
    assert send(loaded, env_for(receivers)) == []
    assert [len(receivers[name].requests) for name in ("dingtalk", "wecom")] == [2, 2]
    assert [len(receivers[name].accepted) for name in ("dingtalk", "wecom")] == [1, 1]


def test_a_second_failure_gives_up_after_two_attempts(
    tmp_path: Path, receivers: dict[str, Any]
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    receivers["webhook"].refuse_next(5, 500, {"error": "down"})
    assert send(loaded, env_for(receivers)) == [
        "app demo: could not notify notify[3] (webhook): it refused the message: HTTP 500"
    ]
    assert len(receivers["webhook"].requests) == 2


def test_a_receiver_that_does_not_answer_in_time_costs_two_bounded_attempts(
    tmp_path: Path, receivers: dict[str, Any]
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    receivers["feishu"].delay_next(2, 30.0)
    warnings = send(loaded, env_for(receivers), timeout=0.2)
    assert warnings == ["app demo: could not notify notify[1] (feishu): no answer within 0.2 s"]
    assert len(receivers["feishu"].requests) == 2
    assert receivers["feishu"].accepted == []


def test_unset_variables_and_unreachable_addresses_are_warnings(tmp_path: Path) -> None:
    loaded = load_app(
        tmp_path,
        "  - {type: wecom, url: '${UNSET_URL}'}\n"
        "  - {type: webhook, url: '${CLOSED}'}\n"
        "  - {type: webhook, url: '${NOT_HTTP}'}\n",
    )
    with Webhook() as hook:
        closed = hook.url  # the port is closed once the receiver is gone
    env = {"CLOSED": closed, "NOT_HTTP": "ftp://files.example.com/hook"}
    assert send(loaded, env) == [
        "app demo: could not notify notify[0] (wecom): environment variable UNSET_URL is not set",
        "app demo: could not notify notify[1] (webhook): the connection failed (ConnectError)",
        "app demo: could not notify notify[2] (webhook): its url is not an http(s) address",
    ]


def test_untrusted_text_cannot_format_link_or_mention(
    tmp_path: Path, receivers: dict[str, Any]
) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    hostile = Summary(
        "failure",
        "demo",
        bots=("[click](https://evil.example)",),
        error='<@all> **urgent** <font color="warning">x</font>\n# owned',
    )
    assert send(loaded, env_for(receivers), hostile) == []
    text = receivers["wecom"].accepted[0]["markdown"]["content"]
    assert "- **Bots**: \\[click\\]\\(https://evil\\.example\\)\n" in text
    assert (
        '＜＠all＞ \\*\\*urgent\\*\\* ＜font color="warning"＞x＜/font＞\\\\u000a\\# owned' in text
    )
    assert "<" not in text and "](" not in text
    assert receivers["feishu"].accepted[0]["content"]["post"]["en_us"]["content"][1] == [
        {
            "tag": "text",
            "text": 'Error: <@all> **urgent** <font color="warning">x</font>\\u000a# owned',
        }
    ]


def test_a_link_that_is_not_a_web_address_is_left_out() -> None:
    summary = Summary("apply", "demo", run_url="javascript:alert(1)", pull_number=3, pull_url="x")
    assert "](" not in markdown(summary, "en")


def test_no_webhook_address_or_secret_reaches_a_log_record(
    tmp_path: Path, receivers: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    loaded = load_app(tmp_path, ALL_TARGETS)
    env = env_for(receivers)
    receivers["dingtalk"].refuse_next(2, 502, None)
    warnings = send(loaded, env)
    assert len(warnings) == 1
    assert "HTTP Request: POST" in caplog.text  # httpx did log the requests
    tokens = [receivers["dingtalk"].token, receivers["feishu"].token, receivers["wecom"].key]
    for leaked in [*env.values(), *tokens]:
        assert leaked not in caplog.text
        assert leaked not in "".join(warnings)
        for request in (r for each in receivers.values() for r in each.requests):
            assert leaked not in request.body.decode()


def test_long_messages_fit_wecoms_4096_bytes(tmp_path: Path, receivers: dict[str, Any]) -> None:
    loaded = load_app(tmp_path, ALL_TARGETS)
    many = Summary("drift", "demo", (("drifted", 60),), tuple(f"机器人-{i}" for i in range(60)))
    huge = Summary("failure", "demo", error="失败" * 3000)
    assert send(loaded, env_for(receivers), many) == []
    assert send(loaded, env_for(receivers), huge) == []
    bots = receivers["wecom"].accepted[0]["markdown"]["content"]
    assert re.search(r"机器人\\-19, and 40 more\n", bots)
    assert len(receivers["wecom"].accepted[1]["markdown"]["content"].encode()) <= 4096
