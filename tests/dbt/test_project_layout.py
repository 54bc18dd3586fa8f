"""The dbt project keeps its conventions: layers, names, grains, keys, contracts, grants.

Conventions no tool enforces drift, so this reads the parsed manifest and checks them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import run_dbt

PREFIXES = {"staging": ("stg_", "base_"), "intermediate": ("int_",)}


@pytest.fixture(scope="module")
def manifest(settings: Settings) -> dict[str, Any]:
    """The manifest of `dbt parse` (no database work)."""
    result = run_dbt(settings, ["parse"])
    data: dict[str, Any] = json.loads(
        (result.target_path / "manifest.json").read_text(encoding="utf-8")
    )
    return data


def _nodes(manifest: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == resource_type and node["package_name"] == "carehouse"
    ]


def test_every_model_and_seed_states_its_grain(manifest: dict[str, Any]) -> None:
    missing = [
        node["name"]
        for node in _nodes(manifest, "model") + _nodes(manifest, "seed")
        if "Grain:" not in node["description"]
    ]
    assert missing == []


def test_every_documented_column_has_a_description(manifest: dict[str, Any]) -> None:
    missing = [
        f"{node['name']}.{name}"
        for node in _nodes(manifest, "model") + _nodes(manifest, "seed")
        for name, column in node["columns"].items()
        if not column["description"].strip()
    ]
    assert missing == []


def test_models_are_named_after_their_layer(manifest: dict[str, Any]) -> None:
    misnamed = []
    for node in _nodes(manifest, "model"):
        layer = node["fqn"][1]
        prefixes = PREFIXES.get(layer)
        if prefixes and not node["name"].startswith(prefixes):
            misnamed.append(node["name"])
    assert misnamed == []


def test_only_staging_reads_sources(manifest: dict[str, Any]) -> None:
    readers = [
        node["name"]
        for node in _nodes(manifest, "model")
        if node["depends_on"]["nodes"]
        and any(parent.startswith("source.") for parent in node["depends_on"]["nodes"])
        and node["fqn"][1] != "staging"
    ]
    assert readers == []


def test_gold_models_have_enforced_contracts_and_bi_grants(manifest: dict[str, Any]) -> None:
    gold = [node for node in _nodes(manifest, "model") if node["config"]["schema"] == "gold"]
    assert len(gold) >= 10
    for node in gold:
        assert node["config"]["contract"]["enforced"], node["name"]
        # Tables, large facts built incrementally, and the news2_alerts view over fct_vitals.
        assert node["config"]["materialized"] in {"table", "incremental", "view"}, node["name"]
        if node["config"]["materialized"] == "incremental":
            assert node["config"]["unique_key"], node["name"]
            assert node["config"]["on_schema_change"] == "fail", node["name"]
        assert node["config"]["grants"].get("select") == ["carehouse_bi"], node["name"]
        undeclared = [name for name, column in node["columns"].items() if not column["data_type"]]
        assert undeclared == [], node["name"]


def test_every_built_model_has_a_uniqueness_test(manifest: dict[str, Any]) -> None:
    tested: set[str] = set()
    for test in _nodes(manifest, "test"):
        metadata = test.get("test_metadata") or {}
        if metadata.get("name") in {"unique", "unique_combination"} and test["attached_node"]:
            tested.add(test["attached_node"])
    untested = [
        node["name"]
        for node in _nodes(manifest, "model")
        if node["config"]["materialized"] != "ephemeral" and node["unique_id"] not in tested
    ]
    assert untested == []
