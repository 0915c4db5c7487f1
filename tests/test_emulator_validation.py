"""Properties of the emulator's body checks: any JSON either parses or is a clean 4xx rejection."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.emulator.validation import (
    Rejection,
    parse_bot,
    parse_query,
    parse_user_id_body,
    parse_user_ids,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "userId",
        "name",
        "type",
        "profileUrl",
        "metadata",
        "integrations",
        "userIds",
        "page",
        "pageSize",
        "includeIntegration",
    ]
)
bodies = st.dictionaries(field_names, json_values, max_size=6) | json_values

short_text = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters=" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
    ),
    min_size=1,
    max_size=20,
).filter(lambda text: not any(char.isspace() for char in text))
integration_types = st.sampled_from(["webhook", "dify_chat", "dify_completion", "dify_chatflow"])


@st.composite
def valid_bots(draw: st.DrawFn) -> dict[str, Any]:
    types = draw(st.lists(integration_types, min_size=1, max_size=4, unique=True))
    integrations = []
    for kind in types:
        integration: dict[str, Any] = {"type": kind, "callbackUrl": "https://h.example/v1"}
        for flag in ("enabled", "stream", "handleResponse"):
            if draw(st.booleans()):
                integration[flag] = draw(st.booleans())
        if kind != "webhook" or draw(st.booleans()):
            integration["auth"] = {"apiKey": draw(short_text)}
        integrations.append(integration)
    body: dict[str, Any] = {
        "userId": draw(short_text),
        "name": draw(short_text),
        "type": draw(short_text),
        "profileUrl": draw(short_text),
        "integrations": integrations,
    }
    if draw(st.booleans()):
        body["metadata"] = draw(st.dictionaries(short_text, short_text, max_size=16))
    return body


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_any_json_body_parses_or_is_a_4xx_rejection(body: Any) -> None:
    for parse in (parse_bot, parse_query, parse_user_id_body, parse_user_ids):
        try:
            parse(body)
        except Rejection as rejection:
            assert rejection.status == 400
            assert rejection.code in (1002, 1502)
            assert ": " in rejection.message  # names the field


@settings(max_examples=100, deadline=None)
@given(valid_bots())
def test_valid_bots_parse_and_normalising_is_idempotent(body: dict[str, Any]) -> None:
    parsed = parse_bot(body)
    assert parse_bot(parsed) == parsed
    assert parsed["userId"] == body["userId"]
    for integration in parsed["integrations"]:
        assert {"enabled", "stream", "handleResponse"} <= integration.keys()
