"""Request signing: the sha1 rule on known inputs, and the httpx.Auth generator driven by hand."""

from __future__ import annotations

import httpx

from provisioner.rongcloud.signing import RongCloudAuth, new_nonce, sign, signature


def test_signature_is_lowercase_hex_sha1_of_secret_nonce_timestamp() -> None:
    # SHA-1("abc"), the FIPS 180 test vector: secret "a" + nonce "b" + timestamp "c".
    assert signature("a", "b", "c") == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_sign_with_given_nonce_and_timestamp() -> None:
    headers = sign("key1", "a", nonce="b", timestamp_ms=1726627371000)
    assert headers.as_dict() == {
        "App-Key": "key1",
        "Nonce": "b",
        "Timestamp": "1726627371000",
        "Signature": signature("a", "b", "1726627371000"),
    }
    assert "Signature" not in repr(headers) and headers.signature not in repr(headers)


def test_nonce_is_random_and_short_enough() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(nonce) <= 18 and nonce.isalnum() for nonce in nonces)


def test_fresh_timestamp_is_in_milliseconds() -> None:
    timestamp = int(sign("k", "s").timestamp)
    assert 1_600_000_000_000 < timestamp < 10_000_000_000_000


def test_auth_flow_sets_the_signing_headers() -> None:
    auth = RongCloudAuth("key1", "a", nonce_factory=lambda: "b", clock_ms=lambda: 1726627371000)
    request = httpx.Request("POST", "https://api.rong-api.com/v3/bot/get.json", json={})
    flow = auth.auth_flow(request)
    signed = next(flow)
    assert signed.headers["App-Key"] == "key1"
    assert signed.headers["Nonce"] == "b"
    assert signed.headers["Timestamp"] == "1726627371000"
    assert signed.headers["Signature"] == signature("a", "b", "1726627371000")
    assert len(signed.headers["X-Request-ID"]) == 32
    try:
        flow.send(httpx.Response(200))
    except StopIteration:
        pass
    else:  # pragma: no cover
        raise AssertionError("the flow signs once and stops")


def test_auth_flow_keeps_a_caller_request_id_and_signs_each_attempt_afresh() -> None:
    auth = RongCloudAuth("key1", "secret")
    first = next(
        auth.auth_flow(httpx.Request("POST", "https://h/x", headers={"X-Request-ID": "r1"}))
    )
    second = next(auth.auth_flow(httpx.Request("POST", "https://h/x")))
    assert first.headers["X-Request-ID"] == "r1"
    assert first.headers["Nonce"] != second.headers["Nonce"]
    assert first.headers["Signature"] != second.headers["Signature"]


def test_auth_repr_hides_the_secret() -> None:
    assert repr(RongCloudAuth("key1", "top-secret")) == "RongCloudAuth(app_key='key1')"
