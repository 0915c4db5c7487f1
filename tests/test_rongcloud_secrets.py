"""A planted app secret and Dify apiKey appear in no log line, exception text/repr or output."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from provisioner.cli import main
from provisioner.errors import ProvisionerError
from provisioner.rongcloud import AuthPayload, BotPayload, IntegrationPayload, RongCloudClient
from provisioner.rongcloud.client import CREATE, GET, UPDATE
from tests.rongcloud_fake import FakeBotApi, Fault

APP_SECRET = "CANARY-app-secret-7f3a9c"
API_KEY = "app-CANARY-dify-key-51d2e8"
CANARIES = (APP_SECRET, API_KEY)


def dify_bot(user_id: str) -> BotPayload:
    return BotPayload(
        userId=user_id,
        name="Dify",
        type="Message AI",
        profileUrl="https://example.com/p.png",
        integrations=[
            IntegrationPayload(
                type="dify_chat",
                callbackUrl="https://api.dify.ai/v1",
                auth=AuthPayload(apiKey=API_KEY),
            )
        ],
    )


def texts_of(error: BaseException) -> list[str]:
    """str/repr/args/hint of an exception and everything it chains to."""
    texts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), repr(seen.args)]
        if isinstance(seen, ProvisionerError):
            texts += [seen.message, seen.hint or "", repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return texts


def exercise_client(fake: FakeBotApi) -> list[BaseException]:
    """Drive successes, rejections, retries and ambiguous writes; return every error raised."""
    errors: list[BaseException] = []
    client = RongCloudClient(
        app_key=fake.app_key,
        app_secret=APP_SECRET,
        hosts=["https://primary.example.com", "https://backup.example.com"],
        rate_limit=100,
        backoff_base=0.0,
        backoff_max=0.0,
        transport=fake.transport(),
        sleep=lambda _: None,
    )
    fake.echo_body_in_errors = True
    fake.script(GET, Fault("status", status=503), Fault("timeout"))
    fake.script(UPDATE, Fault("drop"))
    steps = [
        lambda: client.create_bot(dify_bot("b1")),
        lambda: client.create_bot(dify_bot("b1")),  # duplicate: server echoes the body
        lambda: client.update_bot(dify_bot("b1")),  # dropped after commit: ambiguous
        lambda: client.update_bot(dify_bot("nope")),  # unknown: server echoes the body
        lambda: client.get_bots(["b1"]),  # 503, timeout, then the bot with its apiKey
        lambda: client.query_bots(),
    ]
    for step in steps:
        try:
            result = step()
            errors.append(RuntimeError(repr(result)))  # repr of what came back, checked too
        except ProvisionerError as exc:
            errors.append(exc)
    fake.app_secret = "the-server-expects-another-secret"
    try:
        client.delete_bot("b1")
    except ProvisionerError as exc:
        errors.append(exc)
    client.close()
    return errors


def test_canaries_never_leak(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeBotApi(app_key=f"key-{uuid.uuid4().hex[:8]}", app_secret=APP_SECRET)
    errors = exercise_client(fake)
    # The scenario really ran: the key reached the server, and errors were raised and logged.
    assert fake.bots["b1"]["integrations"][0]["auth"]["apiKey"] == API_KEY
    assert sum(isinstance(e, ProvisionerError) for e in errors) == 4
    assert any("(sensitive)" in str(e) for e in errors)
    assert any("/v3/bot/get.json" in r.getMessage() for r in caplog.records)
    assert fake.calls(CREATE) == 2

    monkeypatch.setenv("RONGCLOUD_APP_SECRET", APP_SECRET)
    assert main(["sign", "--app-key", fake.app_key]) == 0
    assert main(["sign", "--app-key", fake.app_key, "--format", "curl"]) == 0

    captured = capsys.readouterr()
    haystacks = [captured.out, captured.err]
    haystacks += [record.getMessage() for record in caplog.records]
    haystacks += [repr(record.args) for record in caplog.records]
    for error in errors:
        haystacks += texts_of(error)
    for canary in CANARIES:
        leaks = [text for text in haystacks if canary in text]
        assert leaks == [], f"{canary} leaked"


def test_models_hide_the_api_key_in_repr() -> None:
    bot = dify_bot("b1")
    assert API_KEY not in repr(bot) and API_KEY not in str(bot)
    assert bot.wire()["integrations"][0]["auth"]["apiKey"] == API_KEY


def test_transport_errors_do_not_carry_the_request_headers_into_text() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = RongCloudClient(
        app_key=f"key-{uuid.uuid4().hex[:8]}",
        app_secret=APP_SECRET,
        hosts=["https://a.example.com"],
        max_attempts=2,
        transport=httpx.MockTransport(refuse),
        sleep=lambda _: None,
    )
    with pytest.raises(ProvisionerError) as caught:
        client.create_bot(dify_bot("b1"))
    client.close()
    assert all(APP_SECRET not in text and API_KEY not in text for text in texts_of(caught.value))


def test_every_value_to_redact_and_every_stored_key_are_taken_out_of_error_messages() -> None:
    """A server that quotes its request (or a stored key) back in errorMessage: the app's
    ${NAME} values, the call's apiKeys and the keys get/query returned are all redacted."""
    hook_token = "CANARY-hook-token-0c1d"
    stored_key = "app-CANARY-stored-key-9a8b"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/bot/query.json":
            body = {"code": 200, "bots": [dify_bot("old").model_dump(mode="json")]}
            body["bots"][0]["integrations"][0]["auth"]["apiKey"] = stored_key
            body.update(total=1, hasNext=False)
            return httpx.Response(200, json=body)
        echoed = f"{request.content.decode()} (stored {stored_key})"
        return httpx.Response(400, json={"code": 4711, "errorMessage": echoed})

    client = RongCloudClient(
        app_key="key",
        app_secret=APP_SECRET,
        hosts=["https://api.example.com"],
        transport=httpx.MockTransport(handler),
        redact=[hook_token],
    )
    client.query_bots()
    data = dify_bot("new").model_dump(mode="json")
    data["integrations"][0]["callbackUrl"] = f"https://api.dify.ai/v1?token={hook_token}"
    bot = BotPayload.model_validate(data)
    with pytest.raises(ProvisionerError) as caught:
        client.create_bot(bot)
    for text in texts_of(caught.value):
        for canary in (*CANARIES, hook_token, stored_key):
            assert canary not in text
    assert "(sensitive)" in caught.value.message
