"""Shard selection and merging the results of several shard jobs."""

from __future__ import annotations

import json

import pytest

from provisioner.errors import ConfigError
from provisioner.forge.comment import AppFailure
from provisioner.forge.shards import merge_shard_results, shard_result_json
from provisioner.render.plan import render_json
from provisioner.state.drift_record import BotSeen, DriftRecord
from tests.github_support import deleting_doc, unchanged_doc


def test_merge_plan_files_and_shard_results() -> None:
    prod, quiet = deleting_doc("prod"), unchanged_doc("quiet")
    results = {
        "shard-1.json": render_json([quiet]),
        "shard-2.json": shard_result_json([prod], [AppFailure("eu", "boom", "retry")], "a" * 40),
    }
    merged = merge_shard_results(results)
    assert [doc["app"] for doc in merged.plans] == ["prod", "quiet"]
    assert merged.plans[0] == json.loads(json.dumps(prod))
    assert merged.failures == (AppFailure("eu", "boom", "retry"),)
    assert merged.head_sha == "a" * 40


def test_duplicates_and_mismatched_commits_are_refused() -> None:
    prod = deleting_doc("prod")
    with pytest.raises(ConfigError) as caught:
        merge_shard_results({"a.json": render_json([prod]), "b.json": render_json([prod])})
    assert caught.value.message == "app prod is in two shard results: a.json and b.json"
    with pytest.raises(ConfigError, match="app prod is in two shard results"):
        merge_shard_results(
            {
                "a.json": render_json([prod]),
                "b.json": shard_result_json([], [AppFailure("prod", "x")]),
            }
        )
    with pytest.raises(ConfigError) as caught:
        merge_shard_results(
            {
                "a.json": shard_result_json([], head_sha="a" * 40),
                "b.json": shard_result_json([], head_sha="b" * 40),
            }
        )
    assert caught.value.message == (
        "the shard results are for different commits: a.json aaaaaaaaaaaa, b.json bbbbbbbbbbbb"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "shard result x.json is not JSON"),
        (
            '{"format_version": 2, "plans": []}',
            "shard result x.json is not a plan result of format_version 1",
        ),
        (
            '{"format_version": 1, "plans": [{"app": 1}]}',
            "shard result x.json has no valid plans list",
        ),
        (
            '{"format_version": 1, "plans": [], "failures": [{"message": "m"}]}',
            "shard result x.json has a failure without an app name",
        ),
    ],
)
def test_files_that_are_not_results(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        merge_shard_results({"x.json": text})
    assert caught.value.message == message


def test_shard_results_carry_what_the_last_drift_run_saw() -> None:
    seen = DriftRecord("prod", "2026-12-07T03:00:12Z", None, {"a": BotSeen("drifted", ("name",))})
    results = {
        "shard-1.json": shard_result_json([deleting_doc("prod")], seen={"prod": seen}),
        "shard-2.json": shard_result_json([unchanged_doc("quiet")], seen={"quiet": None}),
        "plan.json": render_json([unchanged_doc("other")]),
    }
    assert merge_shard_results(results).seen == {"prod": seen, "quiet": None}
    assert "seen" not in json.loads(shard_result_json([unchanged_doc("quiet")]))
    damaged = json.loads(results["shard-1.json"])
    damaged["seen"]["prod"]["bots"]["a"]["fields"] = []
    with pytest.raises(ConfigError) as caught:
        merge_shard_results({"shard-1.json": json.dumps(damaged)})
    assert caught.value.message == (
        "shard result shard-1.json: seen.prod: drift record is damaged: bots.a.fields"
        " must name the drifted fields, and only those"
    )
    damaged["seen"] = ["prod"]
    with pytest.raises(ConfigError, match="'seen' is not a JSON object"):
        merge_shard_results({"shard-1.json": json.dumps(damaged)})
