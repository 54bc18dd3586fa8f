"""The raw gate on what the real loaders landed: passes on a good load, stops an empty one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from confluent_kafka import Producer

from carehouse.core.settings import Settings
from carehouse.ingest.admissions import load_admissions
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.topic import ensure_topic
from carehouse.quality.gates import GateResult, verify_layer
from tests.support.warehouse import isolated_warehouse

pytestmark = pytest.mark.slow

ADMISSIONS_HEADER = (
    "admission_id,patient_id,admitted_at,discharged_at,department,admission_type,"
    "discharge_disposition,primary_diagnosis_code,total_charges,insurer_id"
)
ADMISSIONS_CSV = "\n".join(
    [
        ADMISSIONS_HEADER,
        "ADM-9001,PAT-4711,2026-03-18T08:00:00,2026-03-19T12:00:00,ICU,emergency,home,I21.9,1200.50,INS1",
        "ADM-9002,PAT-4712,2026-03-19T09:30:00,,CARDIOLOGY,elective,,I10,,",
        "ADM-9003,PAT-4711,2026-03-19T22:00:00,2026-03-20T06:00:00,ICU,urgent,died,J96.0,800,INS1",
    ]
)
PATIENTS_CSV = "\n".join(
    [
        "patient_id,given_name,family_name,birth_date,sex,address_line,postal_code,insurer_id,"
        "plan,updated_at",
        "PAT-4711,Hildegard,Vandermeer,1941-07-02,F,12 Station Road,12345,INS1,BASIC,"
        "2026-03-01T10:00:00",
        "PAT-4712,Osvaldo,Quennell,1978-11-23,M,3 Mill Lane,54321,,,2026-03-02T11:00:00",
    ]
)


def observation(number: int) -> str:
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": f"OBS-{number}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/PAT-4711"},
            "effectiveDateTime": "2026-03-19T08:15:00Z",
            "valueQuantity": {"value": 104, "unit": "mg/dL", "code": "mg/dL"},
        }
    )


def vital(minute: int) -> bytes:
    return json.dumps(
        {
            "device_id": "MON-00042",
            "patient_id": "PAT-4711",
            "observed_at": f"2026-03-19T10:{minute:02d}:00+00:00",
            "heart_rate": 72,
            "resp_rate": 16,
            "systolic_bp": 128,
            "diastolic_bp": 80,
            "spo2": 97,
            "spo2_scale": 1,
            "on_oxygen": False,
            "consciousness": "A",
            "temperature_c": 36.8,
        }
    ).encode()


# Values of the loaded records: none may reach a report.
ROW_VALUES = ("ADM-900", "PAT-471", "Hildegard", "Vandermeer", "Station Road", "1941-07-02")


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    variables: dict[str, str]
    rows: dict[str, int]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def loaded(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Each source loaded once by its real loader; the current load ids as gate variables."""
    landing = tmp_path_factory.mktemp("landing")
    with isolated_warehouse(settings, "rawgate") as isolated:
        warehouse = isolated.model_copy(
            update={"landing_dir": landing, "vitals_topic": f"vitals-gate-{uuid4().hex[:8]}"}
        )
        write(landing / "admissions" / "admissions_2026-03-20.csv", ADMISSIONS_CSV)
        write(landing / "patients" / "patients_2026-03-20.csv", PATIENTS_CSV)
        write(landing / "labs" / "labs_2026-03-20.ndjson", "\n".join(map(observation, (1, 2))))
        ensure_topic(warehouse)
        producer = Producer({"bootstrap.servers": warehouse.kafka, "enable.idempotence": True})
        for minute in range(3):
            producer.produce(warehouse.vitals_topic, vital(minute), key=b"MON-00042", partition=0)
        assert producer.flush(30) == 0

        loads = {
            "admissions": load_admissions(warehouse),
            "patients": load_patients(warehouse),
            "labs": load_labs(warehouse),
        }
        drain = drain_vitals(warehouse)
        variables = {f"{name}_load_id": str(s.load_id) for name, s in loads.items()}
        variables["vitals_drain_id"] = drain.drain_id
        rows = {name: summary.loaded for name, summary in loads.items()}
        rows["vitals"] = drain.loaded
        yield Loaded(warehouse, variables, rows)


def failing(result: GateResult) -> list[tuple[str, str]]:
    return [(Path(c.contract).stem, c.check) for c in result.failed_checks]


def test_raw_gate_passes_on_what_the_loaders_loaded(loaded: Loaded) -> None:
    assert loaded.rows == {"admissions": 3, "patients": 2, "labs": 2, "vitals": 3}

    result = verify_layer(loaded.settings, "raw", "run-raw", variables=loaded.variables)

    assert result.passed, (failing(result), result.errors)
    assert result.warned_checks == ()
    assert [Path(c).stem for c in result.contracts] == ["admissions", "labs", "patients", "vitals"]
    counted = {
        Path(c.contract).stem: c.measured_value
        for c in result.checks
        if c.check_type == "row_count"
    }
    assert counted == loaded.rows
    assert {c.check_type for c in result.checks} >= {"schema", "freshness", "duplicate"}
    assert result.report_json is not None and result.report_markdown is not None
    text = result.report_json.read_text() + result.report_markdown.read_text()
    for value in ROW_VALUES:
        assert value not in text
    # The report says which loads it verified.
    assert loaded.variables["admissions_load_id"] in text


def test_without_load_ids_the_latest_committed_load_is_verified(loaded: Loaded) -> None:
    # What `soda contract verify` from a shell does: no variables.
    result = verify_layer(loaded.settings, "raw", "run-raw-latest")

    assert result.passed, (failing(result), result.errors)


def test_a_duplicate_record_fails_the_gate_named_by_file_and_line(loaded: Loaded) -> None:
    copy = (
        "insert into raw_admissions.admissions select * from raw_admissions.admissions"
        " where _source_line = 3"
    )
    with psycopg.connect(loaded.settings.dsn("loader")) as conn:
        conn.execute(copy)
        file = conn.execute(
            "select file_id from raw_admissions._carehouse_files"
            " where file_name = 'admissions_2026-03-20.csv'"
        ).fetchone()
    assert file is not None
    try:
        result = verify_layer(loaded.settings, "raw", "run-raw-dup", variables=loaded.variables)
    finally:
        with psycopg.connect(loaded.settings.dsn("loader")) as conn:
            conn.execute(
                "delete from raw_admissions.admissions where ctid = ("
                " select max(ctid) from raw_admissions.admissions where _source_line = 3)"
            )

    assert failing(result) == [
        ("admissions", "No record twice in the current load (file and line)")
    ]
    (duplicate,) = result.failed_checks
    assert duplicate.measured_value == 1
    # The file is named by its ledger key: its name, hash and load are one join away.
    assert duplicate.sample_keys == (f"_source_file_id={file[0]}, _source_line=3",)


def test_a_missing_documented_column_fails_and_an_extra_one_does_not(loaded: Loaded) -> None:
    with psycopg.connect(loaded.settings.dsn("loader")) as conn:
        conn.execute("alter table raw_patients.patients rename column postal_code to postcode")
    try:
        result = verify_layer(loaded.settings, "raw", "run-raw-drift", variables=loaded.variables)
    finally:
        with psycopg.connect(loaded.settings.dsn("loader")) as conn:
            conn.execute("alter table raw_patients.patients rename column postcode to postal_code")

    schema_checks = [c for c in result.failed_checks if c.check_type == "schema"]
    assert [Path(c.contract).stem for c in result.failed_checks] == ["patients"]
    (drift,) = schema_checks
    assert drift.diagnostics["missing_columns"] == ["postal_code"]
    # `postcode` is an extra column now: allowed (the loader reports new columns itself).
    assert "unexpected_columns" not in drift.diagnostics


@pytest.mark.parametrize(
    ("name", "body", "failing_checks"),
    [
        # A header-only extract: the load exists, with no record in it.
        ("admissions_2026-03-21.csv", ADMISSIONS_HEADER,
         ["The current load holds rows", "The current load was ingested recently"]),
        # Every record unreadable: all quarantined by the loader, none in raw.
        ("admissions_2026-03-22.csv", ADMISSIONS_HEADER + "\nADM-9009,PAT-4719",
         ["The current load holds rows", "The current load was ingested recently",
          "Share of the load's records the loader quarantined (percent)"]),
    ],
)  # fmt: skip
def test_the_gate_fails_when_the_current_load_is_empty(
    settings: Settings, tmp_path: Path, name: str, body: str, failing_checks: list[str]
) -> None:
    with isolated_warehouse(settings, "rawempty") as warehouse:
        load_admissions(warehouse, write(tmp_path / "admissions_2026-03-20.csv", ADMISSIONS_CSV))
        empty = load_admissions(warehouse, write(tmp_path / name, body))
        assert empty.load_id is not None and empty.loaded == 0
        variables = {"admissions_load_id": empty.load_id}
        # Only the admissions contract matters here: the other sources never loaded.
        result = verify_layer(warehouse, "raw", "run-raw-empty", variables=variables)

    admissions = [check for source, check in failing(result) if source == "admissions"]
    assert admissions == failing_checks
    assert not result.passed
