"""The published JSON Schemas: well-formed Draft 2020-12, documented, and the assembled app's
10-bot limit; the demo manifests validate against them directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from provisioner import models
from provisioner.validate.schema import load_schema, max_bots_per_app

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"
NAMES = ["bot", "app", "app-bundle"]


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def registry() -> Registry:
    resources = [(load(n)["$id"], Resource.from_contents(load(n))) for n in NAMES]
    return Registry().with_resources(resources)


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12_with_an_id(name: str) -> None:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert schema["description"]


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.append((f"{where}.{key}", value))
        for key, value in node.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_properties(value, f"{where}[{index}]"))
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_property_has_a_description(name: str) -> None:
    # Properties named inside if/then are conditions or tighten a rule; their description
    # lives on the property itself.
    undocumented = [
        where
        for where, spec in _properties(load(name))
        if "/if" not in where and "/then" not in where and not spec.get("description")
    ]
    assert undocumented == []


def test_schema_patterns_are_the_models_patterns() -> None:
    bot, app = load("bot"), load("app")
    integration = bot["properties"]["integrations"]["items"]
    assert bot["properties"]["userId"]["pattern"] == models.USER_ID_PATTERN
    assert bot["properties"]["name"]["pattern"] == models.ONE_LINE_PATTERN
    assert bot["properties"]["metadata"]["propertyNames"]["pattern"] == models.ONE_LINE_PATTERN
    assert bot["properties"]["profileUrl"]["pattern"] == models.URL_PATTERN
    assert integration["properties"]["callbackUrl"]["pattern"] == models.URL_PATTERN
    assert integration["then"]["properties"]["callbackUrl"]["pattern"] == models.DIFY_URL_PATTERN
    assert integration["properties"]["auth"]["properties"]["apiKey"]["pattern"] == (
        models.SECRET_PATTERN
    )
    assert app["properties"]["appSecret"]["pattern"] == models.SECRET_PATTERN
    assert app["properties"]["endpoint"]["pattern"] == models.ENDPOINT_PATTERN


def _bot(index: int) -> dict[str, Any]:
    return {
        "userId": f"bot-{index}",
        "name": "Bot",
        "type": "Message AI",
        "profileUrl": "https://example.com/bot.png",
        "integrations": [{"type": "webhook", "callbackUrl": "https://example.com/hook"}],
    }


def test_assembled_app_allows_at_most_ten_bots() -> None:
    validator = Draft202012Validator(load("app-bundle"), registry=registry())
    settings = {"endpoint": "local"}
    assert validator.is_valid({"settings": settings, "bots": [_bot(i) for i in range(10)]})
    errors = list(validator.iter_errors({"bots": [_bot(i) for i in range(11)]}))
    assert [error.validator for error in errors] == ["maxItems"]
    broken = {"bots": [{**_bot(1), "name": ""}]}
    assert [list(e.absolute_path) for e in validator.iter_errors(broken)] == [["bots", 0, "name"]]


def test_demo_manifests_validate_and_carry_the_modeline() -> None:
    demo = REPO / "bots" / "demo"
    bot_validator = Draft202012Validator(load("bot"))
    for path in sorted(demo.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        kind = "app" if path.name == "app.yaml" else "bot"
        modeline = f"# yaml-language-server: $schema=../../schemas/{kind}.schema.json"
        assert text.splitlines()[0] == modeline
        assert (demo / "../../schemas" / f"{kind}.schema.json").resolve().is_file()
        validator = bot_validator if kind == "bot" else Draft202012Validator(load("app"))
        assert list(validator.iter_errors(yaml.safe_load(text))) == []


def test_schemas_ship_inside_the_package() -> None:
    assert SCHEMAS.resolve() == (REPO / "provisioner" / "schemas").resolve()
    assert load_schema("bot") == load("bot")
    assert max_bots_per_app() == 10
