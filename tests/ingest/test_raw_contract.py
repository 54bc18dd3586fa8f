"""Every copy of the raw tables' columns agrees with the tables the loaders really create.

The raw columns are written down in several places:

- ``raw_table_columns()`` (dbt/macros/sources/raw_sources.sql): the columns and types
  staging reads from an empty stand-in until a loader has created the table;
- the batch sources' columns and dlt hints (``dlt_sources/<source>/settings.py``, with
  ``dlt_sources/_common/columns.py``), from which dlt creates the patients, admissions and
  labs tables;
- the vitals drain's DDL (``carehouse/ingest/vitals/tables.py``);
- ``RAW_TABLE_DDL`` in tests/support/warehouse.py, the raw admissions the dbt tests build on.

One small valid file of each batch source is loaded with the real loaders, the drain's
tables are created as the drain does, and each copy is compared with the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from dlt.common.schema.typing import TColumnSchema
from psycopg import sql

from carehouse.core.settings import Settings
from carehouse.ingest.admissions import load_admissions
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients
from carehouse.ingest.vitals.tables import ensure_tables
from carehouse.warehouse.dbt import run_dbt
from dlt_sources.admissions import settings as admissions
from dlt_sources.labs import settings as labs
from dlt_sources.patients import settings as patients
from tests.support.warehouse import RAW_TABLE_DDL, isolated_warehouse

pytestmark = pytest.mark.slow

# The tables raw_table_columns() declares in full, and the file ledgers, of which it declares
# only the columns staging reads (the ledger's counts and bookkeeping are the loader's own).
DECLARED_TABLES = (
    ("raw_patients", "patients"),
    ("raw_labs", "observations"),
    ("raw_vitals", "vitals"),
)
LEDGERS = (
    ("raw_patients", "_carehouse_files"),
    ("raw_admissions", "_carehouse_files"),
    ("raw_labs", "_carehouse_files"),
)

# dlt creates a text column as varchar without a length, which Postgres treats exactly as
# text (same operators, no limit): the comparison reads both as text.
_SAME_AS_TEXT = "character varying"

# The Postgres type dlt gives each data type the sources use.
_DLT_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "json": "jsonb",
}


class Column(NamedTuple):
    """A column as the catalog describes it."""

    name: str
    type: str
    not_null: bool


_CATALOG = """
select
    attribute.attname,
    format_type(attribute.atttypid, attribute.atttypmod),
    attribute.attnotnull
from pg_attribute as attribute
where attribute.attrelid = %s::regclass and attribute.attnum > 0 and not attribute.attisdropped
order by attribute.attnum
"""


def _columns(conn: psycopg.Connection, relation: str) -> list[Column]:
    rows = conn.execute(_CATALOG, (relation,)).fetchall()
    assert rows, f"{relation} has no columns"
    return [
        Column(name, "text" if type_ == _SAME_AS_TEXT else type_, not_null)
        for name, type_, not_null in rows
    ]


def _typed(columns: list[Column]) -> list[tuple[str, str]]:
    return [(column.name, column.type) for column in columns]


def _write_batch_files(folder: Path) -> dict[str, Path]:
    """One valid record per batch source, in the files' own formats."""
    admission = {
        "admission_id": "A1",
        "patient_id": "P0000001",
        "admitted_at": "2026-03-01T08:00:00",
        "discharged_at": "2026-03-03T12:00:00",
        "department": "CARDIOLOGY",
        "admission_type": "emergency",
        "discharge_disposition": "home",
        "primary_diagnosis_code": "I21.9",
        "total_charges": "1200.50",
        "insurer_id": "INS1",
    }
    patient = {
        "patient_id": "P0000001",
        "given_name": "Anna",
        "family_name": "Smith",
        "birth_date": "1960-05-01",
        "sex": "F",
        "address_line": "12 Mill Rd",
        "postal_code": "AB1 2CD",
        "insurer_id": "INS1",
        "plan": "BASIC",
        "updated_at": "2026-03-01T00:00:00",
    }
    observation = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "category": [{"coding": [{"system": "cat", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/P0000001"},
        "effectiveDateTime": "2026-03-01T08:15:00Z",
        "valueQuantity": {"value": 104, "unit": "mg/dL", "code": "mg/dL"},
        "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}],
    }
    files = {
        "admissions": folder / "admissions" / "admissions_2026-03-01.csv",
        "patients": folder / "patients" / "patients_2026-03-01.csv",
        "labs": folder / "labs" / "labs_2026-03-01.ndjson",
    }
    for path in files.values():
        path.parent.mkdir(parents=True)
    for name, record, header in (
        ("admissions", admission, admissions.EXPECTED_COLUMNS),
        ("patients", patient, patients.EXPECTED_COLUMNS),
    ):
        assert tuple(record) == header
        files[name].write_text(",".join(header) + "\n" + ",".join(record.values()) + "\n")
    files["labs"].write_text(json.dumps(observation) + "\n")
    return files


class Raw(NamedTuple):
    """The catalog of the loaded warehouse, and of the test fixture's raw admissions."""

    tables: dict[str, list[Column]]
    fixture_admissions: list[Column]
    settings: Settings


@pytest.fixture(scope="module")
def raw(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Raw]:
    landing = tmp_path_factory.mktemp("landing")
    files = _write_batch_files(landing)
    with isolated_warehouse(settings, "raw_contract") as warehouse:
        # A dlt state of its own: dlt keeps each pipeline's schema under the home, and would
        # create the tables with the columns another test's files added (tests share a home).
        home = tmp_path_factory.mktemp("home")
        loader = warehouse.model_copy(update={"landing_dir": landing, "home": home})
        with psycopg.connect(warehouse.dsn("loader")) as conn:
            # The fixture's table, created and read where the loader's will be, then undone.
            conn.execute(RAW_TABLE_DDL)
            fixture_admissions = _columns(conn, "raw_admissions.admissions")
            conn.rollback()
        for load, source in (
            (load_patients, "patients"),
            (load_admissions, "admissions"),
            (load_labs, "labs"),
        ):
            summary = load(loader, files[source])
            assert (summary.loaded, summary.quarantined_total) == (1, 0), source
        with psycopg.connect(warehouse.dsn("loader"), autocommit=True) as conn:
            ensure_tables(conn)
        with psycopg.connect(warehouse.dsn("admin")) as conn:
            tables = {
                f"{schema}.{table}": _columns(conn, f"{schema}.{table}")
                for schema, table in (
                    *DECLARED_TABLES,
                    *LEDGERS,
                    (admissions.DATASET, admissions.TABLE),
                )
            }
        yield Raw(tables, fixture_admissions, warehouse)


@pytest.fixture(scope="module")
def declared(raw: Raw) -> dict[str, list[tuple[str, str]]]:
    """raw_table_columns() of every table, as dbt renders it, types as Postgres spells them."""
    wanted = ", ".join(
        f"'{schema}.{table}': raw_table_columns('{schema}', '{table}')"
        for schema, table in (*DECLARED_TABLES, *LEDGERS)
    )
    result = run_dbt(raw.settings, ["compile", "--inline", f"{{{{ tojson({{{wanted}}}) }}}}"])
    run_results = json.loads((result.target_path / "run_results.json").read_text("utf-8"))
    (compiled,) = [
        entry["compiled_code"]
        for entry in run_results["results"]
        if entry["unique_id"].endswith(".inline_query")
    ]
    macro: dict[str, list[list[str]]] = json.loads(compiled)
    # Postgres spells each type the macro names (numeric(38, 9) -> numeric(38,9)): a
    # throwaway table of exactly those columns, rolled back.
    spelled: dict[str, list[tuple[str, str]]] = {}
    with psycopg.connect(raw.settings.dsn("admin")) as conn:
        for number, (key, columns) in enumerate(macro.items()):
            name = f"declared_{number}"
            # The type names are the project's own macro's, not input.
            definition = sql.SQL(", ").join(
                [
                    sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(type_))
                    for column, type_ in columns
                ]
            )
            conn.execute(
                sql.SQL("create temporary table {} ({})").format(sql.Identifier(name), definition)
            )
            spelled[key] = _typed(_columns(conn, f"pg_temp.{name}"))
        conn.rollback()
    return spelled


@pytest.mark.parametrize("table", [f"{schema}.{table}" for schema, table in DECLARED_TABLES])
def test_the_macro_declares_each_raw_table_as_loaded(
    raw: Raw, declared: dict[str, list[tuple[str, str]]], table: str
) -> None:
    assert declared[table] == _typed(raw.tables[table])


@pytest.mark.parametrize("ledger", [f"{schema}.{table}" for schema, table in LEDGERS])
def test_the_macro_declares_the_ledger_columns_staging_reads(
    raw: Raw, declared: dict[str, list[tuple[str, str]]], ledger: str
) -> None:
    loaded = dict(_typed(raw.tables[ledger]))
    assert [(name, loaded.get(name)) for name, _ in declared[ledger]] == declared[ledger]


def _from_hints(hints: dict[str, TColumnSchema]) -> list[Column]:
    columns = []
    for name, hint in hints.items():
        data_type = str(hint["data_type"])
        if data_type == "decimal":
            type_ = f"numeric({hint['precision']},{hint['scale']})"
        else:
            type_ = _DLT_TYPES[data_type]
        columns.append(Column(name, type_, not hint.get("nullable", True)))
    return columns


@pytest.mark.parametrize(
    ("table", "hints"),
    [
        (
            f"{patients.DATASET}.{patients.TABLE}",
            patients.LAYOUT.column_hints(patients.LAYOUT.part_columns(patients.EXPECTED_COLUMNS)),
        ),
        (
            f"{admissions.DATASET}.{admissions.TABLE}",
            admissions.LAYOUT.column_hints(
                admissions.LAYOUT.part_columns(admissions.EXPECTED_COLUMNS)
            ),
        ),
        (f"{labs.DATASET}.{labs.TABLE}", labs.COLUMN_HINTS),
    ],
    ids=["patients", "admissions", "labs"],
)
def test_the_sources_columns_and_hints_are_the_tables_dlt_creates(
    raw: Raw, table: str, hints: dict[str, TColumnSchema]
) -> None:
    assert raw.tables[table] == _from_hints(hints)


def test_the_dbt_tests_raw_admissions_are_the_loaders(raw: Raw) -> None:
    table = f"{admissions.DATASET}.{admissions.TABLE}"
    assert raw.fixture_admissions == raw.tables[table]
