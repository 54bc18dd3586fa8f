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
# Star-schema marts (facts and dimensions) are the `core` domain; the other domains hold
# business marts named for what they report (avg_los_by_department, readmissions_30d, ...).
STAR_PREFIXES = ("fct_", "dim_")
STAR_DOMAIN = "core"
QUARANTINE_SUFFIX = "_rejected"


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


def _layer(manifest: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    return [node for node in _nodes(manifest, "model") if node["fqn"][1] == layer]


def _folder_violations(node: dict[str, Any], layer: str) -> list[str]:
    """models/<layer>/<folder>/<name>.sql, documented in that folder's _<folder>__models.yml."""
    name = node["name"]
    fqn = node["fqn"]
    if len(fqn) != 4:
        return [f"{name}: not in one models/{layer}/<folder>/ ({node['original_file_path']})"]
    folder = fqn[2]
    problems = []
    if node["original_file_path"] != f"models/{layer}/{folder}/{name}.sql":
        problems.append(f"{name}: file {node['original_file_path']}")
    properties = f"carehouse://models/{layer}/{folder}/_{folder}__models.yml"
    if node["patch_path"] != properties:
        problems.append(f"{name}: properties in {node['patch_path']}, not {properties}")
    return problems


def test_quarantine_models_follow_the_quarantine_rule(manifest: dict[str, Any]) -> None:
    """A source's rejected records: models/quarantine/<source>/<source>_rejected.sql.

    Built into the `quarantine` schema (never gold, no BI grant: rows are records as
    received), with a documented, not-null `reason` restricted to known codes, reading only
    its own source's staging models, and named as the quarantine of that source's
    reconciles_with_raw test (raw = staged + quarantined).
    """
    quarantine = _layer(manifest, "quarantine")
    assert len(quarantine) >= 4
    staging_sources = {node["fqn"][2] for node in _layer(manifest, "staging")}
    reason_tests: dict[str, set[str]] = {}
    reconciled: dict[str, str] = {}
    for test in _nodes(manifest, "test"):
        metadata = test.get("test_metadata") or {}
        if test.get("column_name") == "reason" and test["attached_node"]:
            reason_tests.setdefault(test["attached_node"], set()).add(str(metadata.get("name")))
        if metadata.get("name") == "reconciles_with_raw":
            reconciled[metadata["kwargs"]["quarantine"]] = test["attached_node"]
    nodes = manifest["nodes"]
    problems: list[str] = []
    for node in quarantine:
        name = node["name"]
        problems += _folder_violations(node, "quarantine")
        source = node["fqn"][2]
        if source not in staging_sources:
            problems.append(f"{name}: no staging/{source}/ for its folder")
        if name != f"{source}{QUARANTINE_SUFFIX}":
            problems.append(f"{name}: not named {source}{QUARANTINE_SUFFIX}")
        if node["config"]["schema"] != "quarantine":
            problems.append(f"{name}: builds into {node['config']['schema']}")
        if "carehouse_bi" in node["config"]["grants"].get("select", []):
            problems.append(f"{name}: granted to BI")
        reason = node["columns"].get("reason")
        if reason is None or not reason["description"].strip():
            problems.append(f"{name}: no documented reason column")
        if {"not_null", "accepted_values"} - reason_tests.get(node["unique_id"], set()):
            problems.append(f"{name}: reason not tested not_null and accepted_values")
        foreign = [
            parent
            for parent in node["depends_on"]["nodes"]
            if parent.startswith("model.") and nodes[parent]["fqn"][1:3] != ["staging", source]
        ]
        if foreign:
            problems.append(f"{name}: reads {foreign}, not only staging/{source}/")
        staged = reconciled.get(name)
        if staged is None or nodes[staged]["fqn"][1:3] != ["staging", source]:
            problems.append(f"{name}: no reconciles_with_raw test of staging/{source}/ names it")
    outside = [
        node["name"]
        for node in _nodes(manifest, "model")
        if node["config"]["schema"] == "quarantine" and node["fqn"][1] != "quarantine"
    ]
    assert problems == []
    assert outside == []


def test_marts_follow_the_marts_rule(manifest: dict[str, Any]) -> None:
    """Gold is exactly the marts: models/marts/<domain>/<name>.sql, in the gold schema.

    Facts and dimensions (fct_, dim_) are the core domain and only it; the other domains
    hold business marts, named for what they report, with no other layer's prefix. Every
    mart has an enforced contract (the gold test above checks its details).
    """
    marts = _layer(manifest, "marts")
    assert len(marts) >= 10
    other_prefixes = tuple(prefix for prefixes in PREFIXES.values() for prefix in prefixes)
    problems: list[str] = []
    for node in marts:
        name = node["name"]
        problems += _folder_violations(node, "marts")
        domain = node["fqn"][2]
        is_star = name.startswith(STAR_PREFIXES)
        if is_star != (domain == STAR_DOMAIN):
            problems.append(f"{name}: in marts/{domain}/ (fct_/dim_ live in, and only in, core)")
        if name.startswith(other_prefixes) or name.endswith(QUARANTINE_SUFFIX):
            problems.append(f"{name}: named like another layer")
        if node["config"]["schema"] != "gold":
            problems.append(f"{name}: builds into {node['config']['schema']}")
        if not node["config"]["contract"]["enforced"]:
            problems.append(f"{name}: contract not enforced")
    outside = [
        node["name"]
        for node in _nodes(manifest, "model")
        if node["config"]["schema"] == "gold" and node["fqn"][1] != "marts"
    ]
    assert problems == []
    assert outside == []
