"""Where Dify calls go, and which addresses RongCloud's servers cannot reach."""

from __future__ import annotations

import pytest

from provisioner.dify.routing import DifyRoute, is_loopback_url, private_address


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:5001/v1", "a loopback address"),
        ("http://localhost/v1", "a loopback address"),
        ("http://dify.localhost/v1", None),  # a name other than localhost is not trusted
        ("http://[::1]:80/v1", "a loopback address"),
        ("http://10.1.2.3/v1", "a private address"),
        ("https://192.168.0.9/v1", "a private address"),
        ("http://169.254.1.1/v1", "a link-local address"),
        ("http://0.0.0.0/v1", "a private address"),
        ("https://api.dify.ai/v1", None),
        ("https://8.8.8.8/v1", None),
        ("https://dify.internal.example/v1", None),
        ("not a url", None),
    ],
)
def test_private_addresses(url: str, reason: str | None) -> None:
    assert private_address(url) == reason


def test_the_local_rule() -> None:
    route = DifyRoute("http://127.0.0.1:9/v1/")
    assert route.target("https://api.dify.ai/v1") == "http://127.0.0.1:9/v1"
    assert route.routed("https://api.dify.ai/v1")
    assert route.target("http://127.0.0.1:5001/v1/") == "http://127.0.0.1:5001/v1"
    assert not route.routed("http://localhost:5001/v1")
    nowhere = DifyRoute(None)
    assert nowhere.target("https://api.dify.ai/v1") is None
    assert not nowhere.routed("https://api.dify.ai/v1")
    assert is_loopback_url("http://LOCALHOST:1/v1") and not is_loopback_url("http://[bad/v1")
