"""shard.py: which of N jobs takes an app (--shard I/N)."""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.workspace import apps_in_shard, parse_shard, shard_of


def test_shard_of_is_stable_and_documented() -> None:
    assert [shard_of(name, 4) for name in ("demo", "prod", "staging", "eu")] == [
        shard_of(name, 4) for name in ("demo", "prod", "staging", "eu")
    ]
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"prod").digest()[:8], "big") % 4 + 1
    assert shard_of("prod", 4) == expected
    assert shard_of("anything", 1) == 1
    apps = [f"app-{index}" for index in range(200)]
    shards = [apps_in_shard(apps, index, 4) for index in range(1, 5)]
    assert sorted(app for shard in shards for app in shard) == sorted(apps)
    assert all(30 < len(shard) < 70 for shard in shards)
    with pytest.raises(ConfigError):
        shard_of("x", 0)


@pytest.mark.parametrize("text", ["0/4", "5/4", "a/b", "1", "1/0"])
def test_bad_shard_flags(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_shard(text)
    assert caught.value.message == f"--shard {text!r} is not of the form I/N with 1 ≤ I ≤ N"
    assert parse_shard(" 2 / 4 ") == (2, 4)
