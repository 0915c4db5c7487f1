"""Data centers, base URLs, the https-or-loopback rule, and host failover."""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.rongcloud import DATA_CENTERS, hosts_for_endpoint
from provisioner.rongcloud.hosts import HostRing


def test_data_centers_have_primary_and_backup() -> None:
    assert set(DATA_CENTERS) == {"cn", "sg", "sg-b", "na", "sa"}
    assert hosts_for_endpoint("cn") == ["https://api.rong-api.com", "https://api-b.rong-api.com"]
    assert hosts_for_endpoint("sa") == [
        "https://api.sau-light-api.com",
        "https://api-b.sau-light-api.com",
    ]


def test_sau_is_the_sdks_name_of_the_saudi_data_center() -> None:
    assert hosts_for_endpoint("sau") == hosts_for_endpoint("sa")
    assert hosts_for_endpoint(" sau ") == hosts_for_endpoint("sa")


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com:8443/prefix", "https://api.example.com:8443/prefix"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.3.2.1:8080/", "http://127.3.2.1:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://localhost:9000", "http://localhost:9000"),
    ],
)
def test_base_urls(endpoint: str, expected: str) -> None:
    assert hosts_for_endpoint(endpoint) == [expected]


@pytest.mark.parametrize(
    ("endpoint", "message", "hint"),
    [
        (
            "http://api.example.com",
            "endpoint URL 'http://api.example.com' uses plain http",
            "use https://; plain http is allowed only for loopback addresses "
            "(127.0.0.1, ::1, localhost), e.g. the local emulator",
        ),
        (
            "http://10.0.0.1:8080",
            "endpoint URL 'http://10.0.0.1:8080' uses plain http",
            "use https://; plain http is allowed only for loopback addresses "
            "(127.0.0.1, ::1, localhost), e.g. the local emulator",
        ),
        (
            "eu",
            "unknown endpoint 'eu'",
            "use a data center (cn, sg, sg-b, na, sa/sau) or a base URL such as https://api.example.com",
        ),
        (
            "ftp://api.example.com",
            "malformed endpoint URL 'ftp://api.example.com'",
            "use a data center (cn, sg, sg-b, na, sa/sau) or a base URL such as https://api.example.com",
        ),
        (
            "https://api.example.com:port",
            "malformed endpoint URL 'https://api.example.com:port'",
            "use a data center (cn, sg, sg-b, na, sa/sau) or a base URL such as https://api.example.com",
        ),
        (
            "https://user:pw@api.example.com",
            "endpoint URL must not contain credentials",
            "remove the user:password@ part; requests are signed with the app key and secret",
        ),
        (
            "https://api.example.com/?x=1",
            "endpoint URL 'https://api.example.com/?x=1' must not have a query or fragment",
            "give only scheme, host, optional port and optional path prefix",
        ),
    ],
)
def test_bad_endpoints(endpoint: str, message: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        hosts_for_endpoint(endpoint)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_host_ring_fails_over_once_per_failure() -> None:
    ring = HostRing(["https://a", "https://b"])
    assert ring.current() == "https://a"
    assert ring.fail_over("https://a") == "https://b"
    # A second thread reporting the same failure does not switch back.
    assert ring.fail_over("https://a") == "https://b"
    assert ring.fail_over("https://b") == "https://a"


def test_single_host_ring_stays_put() -> None:
    ring = HostRing(["https://a"])
    assert ring.fail_over("https://a") == "https://a"
