"""The contracts stay in step with the dbt project and keep to the gate's rules (no database)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from carehouse.core.settings import PROJECT_ROOT
from carehouse.quality.gates import PREVIOUS_ROW_COUNT_VARIABLE, SCHEMA_VARIABLE

CONTRACTS = PROJECT_ROOT / "soda" / "contracts"
MODELS = PROJECT_ROOT / "dbt" / "models"
RAW_TABLES = {
    "admissions": "raw_admissions",
    "patients": "raw_patients",
    "labs": "raw_labs",
    "vitals": "raw_vitals",
}
# Columns that identify one patient or encounter: never a sample key in a report.
PERSON_LEVEL_KEYS = {
    "patient_id", "patient_key", "patient_version_id", "admission_id", "episode_id",
    "observation_id", "observation_set_id", "device_id",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def contracts(layer: str) -> dict[str, dict[str, Any]]:
    return {path.stem: load(path) for path in sorted((CONTRACTS / layer).glob("*.yml"))}


def gold_models() -> dict[str, list[tuple[str, str]]]:
    """Each mart of the dbt project with its contracted (column, base data type) list."""
    models: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((MODELS / "marts").rglob("*.yml")):
        for model in load(path).get("models") or []:
            models[model["name"]] = [
                (column["name"], re.sub(r"\(.*\)", "", str(column.get("data_type"))).strip())
                for column in model.get("columns") or []
            ]
    return models


def all_checks(contract: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(check type, body) of every dataset and column check of a contract."""
    found = [next(iter(check.items())) for check in contract.get("checks") or []]
    for column in contract.get("columns") or []:
        found += [next(iter(check.items())) for check in column.get("checks") or []]
    return [(kind, body or {}) for kind, body in found]


def test_every_mart_has_a_gold_contract_and_every_gold_contract_a_mart() -> None:
    marts = {path.stem for path in (MODELS / "marts").rglob("*.sql")}
    assert set(contracts("gold")) == marts


@pytest.mark.parametrize("name", sorted(contracts("gold")))
def test_a_gold_contract_has_exactly_the_columns_of_the_dbt_contract(name: str) -> None:
    expected = gold_models()[name]
    columns = [(c["name"], c.get("data_type")) for c in contracts("gold")[name]["columns"]]
    assert columns == expected


@pytest.mark.parametrize("name", sorted(contracts("gold")))
def test_a_gold_contract_can_verify_gold_next_and_guards_its_shape(name: str) -> None:
    contract = contracts("gold")[name]
    assert contract["dataset"] == (
        f"carehouse/${{env.CAREHOUSE_PG_DATABASE}}/${{var.{SCHEMA_VARIABLE}}}/{name}"
    )
    assert contract["variables"] == {
        SCHEMA_VARIABLE: {"default": "gold"},
        PREVIOUS_ROW_COUNT_VARIABLE: {"default": 0},
    }
    # SQL naming `gold.` itself would read the published table while gold_next is verified.
    assert not re.search(r"\bgold(_next)?\.", yaml.safe_dump(contract))
    checks = all_checks(contract)
    kinds = [kind for kind, _ in checks]
    assert "schema" in kinds
    assert not checks[kinds.index("schema")][1].get("allow_extra_columns")
    names = {body.get("name") for _, body in checks}
    assert "No column named like a direct patient identifier" in names
    assert "At least half the rows of the last publish (percent of them)" in names
    assert "duplicate" in kinds


def test_every_gold_contract_forbids_the_same_identifier_columns() -> None:
    def identifier_query(contract: dict[str, Any]) -> str:
        (body,) = [
            body
            for kind, body in all_checks(contract)
            if body.get("name") == "No column named like a direct patient identifier"
        ]
        return re.sub(r"table_name = '\w+'", "", str(body["query"]))

    queries = {identifier_query(contract) for contract in contracts("gold").values()}
    assert len(queries) == 1
    (query,) = queries
    for column in ("patient_id", "given_name", "family_name", "birth_date", "postal_code"):
        assert f"'{column}'" in query


@pytest.mark.parametrize("layer", ["gold", "silver"])
def test_reports_never_name_a_patient_or_encounter(layer: str) -> None:
    for name, contract in contracts(layer).items():
        keys = set((contract.get("check_attributes") or {}).get("sample_keys") or [])
        assert not keys & PERSON_LEVEL_KEYS, name
        if layer == "silver":
            assert not keys, name


def test_silver_contracts_name_models_of_the_dbt_project() -> None:
    models = {path.stem for path in MODELS.rglob("*.sql")}
    snapshots = {path.stem for path in (PROJECT_ROOT / "dbt" / "snapshots").glob("*.sql")}
    for name, contract in contracts("silver").items():
        schema, table = contract["dataset"].split("/")[-2:]
        assert table == name
        assert name in (snapshots if schema == "snapshots" else models), name


@pytest.mark.parametrize(("name", "schema"), sorted(RAW_TABLES.items()))
def test_a_raw_contract_gates_the_current_load_of_its_table(name: str, schema: str) -> None:
    contract = contracts("raw")[name]
    assert contract["dataset"].startswith(f"carehouse/${{env.CAREHOUSE_PG_DATABASE}}/{schema}/")
    (variable,) = contract["variables"]
    assert variable in contract["filter"]
    assert contract["variables"][variable] == {"default": ""}
    keys = contract["check_attributes"]["sample_keys"]
    # Technical keys only: where the record came from, never what it says.
    assert all(key.startswith(("_source_", "kafka_")) for key in keys)
    checks = all_checks(contract)
    kinds = {kind for kind, _ in checks}
    assert {"schema", "row_count", "freshness", "duplicate"} <= kinds
    (schema_check,) = [body for kind, body in checks if kind == "schema"]
    assert schema_check["allow_extra_columns"] is True
    (row_count,) = [body for kind, body in checks if kind == "row_count"]
    assert row_count["threshold"] == {"must_be_greater_than": 0}


def test_contracts_live_in_a_layer_folder_and_pending_ones_are_not_gated() -> None:
    layers = {path.name for path in CONTRACTS.iterdir() if path.is_dir()}
    assert layers == {"raw", "silver", "gold"}
    for layer in layers:
        nested = [p for p in (CONTRACTS / layer).rglob("*.yml") if p.parent != CONTRACTS / layer]
        # Only pending/ may hold contracts the gate does not read.
        assert all(path.parent.name == "pending" for path in nested)
