"""secrets.py: references, resolving (unset, empty, undecodable), fingerprints, redaction."""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.secrets import (
    fingerprint,
    is_available,
    redact,
    referenced_values,
    references,
    resolve,
)


def test_resolve_replaces_every_reference() -> None:
    env = {"HOST": "hooks.example.com", "TOKEN": "t0ps3cret"}
    assert resolve("https://${HOST}/x?token=${TOKEN}", env) == (
        "https://hooks.example.com/x?token=t0ps3cret"
    )
    assert references("a ${A} b ${B_2}") == ["A", "B_2"]


@pytest.mark.parametrize(
    ("env", "message", "hint"),
    [
        (
            {},
            "environment variable TOKEN is not set",
            "export TOKEN=... before running, or pass it as a CI secret",
        ),
        (
            {"TOKEN": ""},
            "environment variable TOKEN is empty",
            "set TOKEN to the secret's value; in CI, check that the secret exists and is passed"
            " to this job (a missing secret arrives as an empty string)",
        ),
        (
            {"TOKEN": "bad-\udcff-bytes"},
            "environment variable TOKEN is not valid UTF-8",
            "set TOKEN from a UTF-8 source (its bytes could not be decoded)",
        ),
    ],
    ids=["unset", "empty", "not-utf8"],
)
def test_a_value_that_cannot_be_used_names_the_variable_never_the_value(
    env: dict[str, str], message: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve("x-${TOKEN}", env)
    assert (caught.value.message, caught.value.hint) == (message, hint)
    assert is_available("TOKEN", env) is bool(env.get("TOKEN"))


def test_referenced_values_are_the_available_ones_longest_first() -> None:
    env = {"A": "short-1", "B": "a-much-longer-value", "EMPTY": ""}
    texts = ["${A}", "x ${B} ${A}", "${EMPTY}", "${UNSET}", "plain"]
    assert referenced_values(texts, env) == ["a-much-longer-value", "short-1"]


def test_redact_takes_the_longest_secret_first_and_leaves_short_ones() -> None:
    assert redact("key abcdef-123 and abcdef", ["abcdef", "abcdef-123"]) == (
        "key (sensitive) and (sensitive)"
    )
    assert redact("a tiny s", ["s", "tiny"]) == "a tiny s"


def test_fingerprint_is_salted() -> None:
    assert fingerprint("v", "salt-1") != fingerprint("v", "salt-2")
    assert fingerprint("v", "salt-1").startswith("hmac-sha256:")
