"""The gold marts on a small hand-checked hospital: episodes, readmissions, census, prevalence.

Every expected number below is worked out by hand from the records in ADMISSIONS; the
comments next to the records give the arithmetic. Hospital timezone: UTC (the default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import DbtResult, run_dbt
from tests.support.warehouse import RawAdmission, isolated_warehouse, load_raw_admissions

pytestmark = pytest.mark.slow

D = Decimal


def _admission(
    line: int,
    admission_id: str,
    patient_id: str,
    admitted_at: str,
    discharged_at: str | None,
    department: str,
    admission_type: str,
    disposition: str | None,
    code: str,
) -> RawAdmission:
    return RawAdmission(admission_id, patient_id, admitted_at, discharged_at, department,
                        admission_type, disposition, code, "1000.00", "INS1",
                        source_file="admissions_gold.csv", source_line=line)  # fmt: skip


ADMISSIONS: tuple[RawAdmission, ...] = (
    # P10: R1 -> R2 is a ward transfer on Mar 3 (same day): one episode R1, Mar 1 - Mar 6,
    # ending at home. R3 (sent as "ER") starts Apr 5 = Mar 6 + 30: a readmission on day 30.
    _admission(1, "R1", "P10", "2026-03-01T10:00:00", "2026-03-03T12:00:00", "CARDIOLOGY",
               "emergency", "transfer", "I21.4"),
    _admission(2, "R2", "P10", "2026-03-03T12:30:00", "2026-03-06T11:00:00", "GENERAL_MEDICINE",
               "urgent", "home", "I50.9"),
    _admission(3, "R3", "P10", "2026-04-05T09:00:00", "2026-04-05T15:00:00", "ER",
               "emergency", "home", "R07.4"),
    # P11: ICU stay, then a same-day move to respiratory where the patient dies: one episode
    # ending in death, so no index admission (stay by stay, Q1 would look readmitted on day 0).
    _admission(4, "Q1", "P11", "2026-03-10T08:00:00", "2026-03-12T10:00:00", "ICU",
               "emergency", "other", "J96.0"),
    _admission(5, "Q2", "P11", "2026-03-12T10:00:00", "2026-03-15T16:00:00", "RESPIRATORY",
               "urgent", "died", "J18.9"),
    # P12: T1 discharged Mar 2; T2 starts Mar 3 (the next day): a new episode, readmission day 1.
    _admission(6, "T1", "P12", "2026-03-01T09:00:00", "2026-03-02T11:00:00", "GERIATRICS",
               "emergency", "home", "R29.6"),
    _admission(7, "T2", "P12", "2026-03-03T09:00:00", "2026-03-08T11:00:00", "GERIATRICS",
               "emergency", "home", "S72.0"),
    # P13: chemotherapy day cases U1 (Mar 2) and U2 (Mar 16, elective: not a readmission),
    # then an emergency on Apr 16 = Mar 16 + 31: outside the window.
    _admission(8, "U1", "P13", "2026-03-02T08:00:00", "2026-03-02T16:00:00", "ONCOLOGY",
               "elective", "home", "Z51.1"),
    _admission(9, "U2", "P13", "2026-03-16T08:00:00", "2026-03-16T15:00:00", "ONCOLOGY",
               "elective", "home", "Z51.1"),
    _admission(10, "U3", "P13", "2026-04-16T10:00:00", "2026-04-18T10:00:00", "ONCOLOGY",
               "emergency", "home", "C34.9"),
    # P14: S2 (ICU, Mar 22-23) lies inside S1 (surgery, Mar 20-25): one episode ended by S1.
    _admission(11, "S1", "P14", "2026-03-20T10:00:00", "2026-03-25T12:00:00", "GENERAL_SURGERY",
               "emergency", "home", "K35.8"),
    _admission(12, "S2", "P14", "2026-03-22T01:00:00", "2026-03-23T09:00:00", "ICU",
               "urgent", "other", "K35.8"),
    # P15: "Orthopedics" is an alias of ORTHOPAEDICS; ZZZ is no ICD-10 code: UNKNOWN. LOS 22.
    _admission(13, "W1", "P15", "2026-03-05T10:00:00", "2026-03-27T10:00:00", "Orthopedics",
               "emergency", "home", "ZZZ"),
    # Neurology census: N1 Mar 10-12 (nights of Mar 10, 11), N2 same-day Mar 11 (none),
    # N3 Mar 11-13 (Mar 11, 12), N4 from Mar 12, still in hospital (Mar 12 .. Apr 18).
    _admission(14, "N1", "P20", "2026-03-10T14:00:00", "2026-03-12T09:00:00", "NEUROLOGY",
               "emergency", "home", "I63.9"),
    _admission(15, "N2", "P21", "2026-03-11T08:00:00", "2026-03-11T20:00:00", "NEUROLOGY",
               "emergency", "home", "G45.9"),
    _admission(16, "N3", "P22", "2026-03-11T23:30:00", "2026-03-13T10:00:00", "NEUROLOGY",
               "emergency", "home", "G40.9"),
    _admission(17, "N4", "P23", "2026-03-12T10:00:00", None, "NEUROLOGY",
               "emergency", None, "I61.9"),
    # A padded name ending in a line break (a quoted CSV field) is still a department. The
    # same-day stay ended in death: no bed-night, no index admission.
    _admission(18, "X1", "P30", "2026-03-31T08:00:00", "2026-03-31T10:00:00", " Paediatrics\n",
               "emergency", "died", "J21.9"),
)  # fmt: skip

PATIENT_IDS = sorted({record.patient_id for record in ADMISSIONS if record.patient_id})

# admission_id: (episode_id, los_days, is_index_admission, is_readmitted_30d, days_to_readmission)
EXPECTED_FLAGS = {
    "R1": ("R1", 2, False, False, None),
    "R2": ("R1", 3, True, True, 30),
    "R3": ("R3", 0, True, False, None),
    "Q1": ("Q1", 2, False, False, None),
    "Q2": ("Q1", 3, False, False, None),
    "T1": ("T1", 1, True, True, 1),
    "T2": ("T2", 5, True, False, None),
    "U1": ("U1", 0, True, False, None),
    "U2": ("U2", 0, True, False, None),
    "U3": ("U3", 2, True, False, None),
    "S1": ("S1", 5, True, False, None),
    "S2": ("S1", 1, False, False, None),
    "W1": ("W1", 22, True, False, None),
    "N1": ("N1", 2, True, False, None),
    "N2": ("N2", 0, True, False, None),
    "N3": ("N3", 2, True, False, None),
    "N4": ("N4", None, False, False, None),
    "X1": ("X1", 0, False, False, None),
}

# The index stay's discharge month, department and diagnosis. The last data day is Apr 18
# (U3's discharge), less than 30 days after either month's end: follow-up is incomplete.
EXPECTED_READMISSIONS = [
    ("2026-03-01", "GENERAL_MEDICINE", "I50.9", 1, 1, D("100.00"), False),
    ("2026-03-01", "GENERAL_SURGERY", "K35.8", 1, 0, D("0.00"), False),
    ("2026-03-01", "GERIATRICS", "R29.6", 1, 1, D("100.00"), False),
    ("2026-03-01", "GERIATRICS", "S72.0", 1, 0, D("0.00"), False),
    ("2026-03-01", "NEUROLOGY", "G40.9", 1, 0, D("0.00"), False),
    ("2026-03-01", "NEUROLOGY", "G45.9", 1, 0, D("0.00"), False),
    ("2026-03-01", "NEUROLOGY", "I63.9", 1, 0, D("0.00"), False),
    ("2026-03-01", "ONCOLOGY", "Z51.1", 2, 0, D("0.00"), False),
    ("2026-03-01", "ORTHOPAEDICS", "UNKNOWN", 1, 0, D("0.00"), False),
    ("2026-04-01", "EMERGENCY", "R07.4", 1, 0, D("0.00"), False),
    ("2026-04-01", "ONCOLOGY", "C34.9", 1, 0, D("0.00"), False),
]

# Data days: Mar 1 (first admission) .. Apr 18 (last discharge) = 31 + 18 = 49 days.
DATA_DAYS = 49


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """A database holding the hand-checked gold admissions."""
    with isolated_warehouse(settings, "gold") as isolated:
        load_raw_admissions(isolated, ADMISSIONS)
        yield isolated


@pytest.fixture(scope="module")
def build(warehouse: Settings) -> DbtResult:
    """One full `dbt build`."""
    return run_dbt(warehouse, ["build"])


def query(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    """Rows of one query run as the BI role (gold only), dates as ISO text."""
    with psycopg.connect(settings.dsn("bi")) as conn:
        return [
            tuple(value.isoformat() if hasattr(value, "isoformat") else value for value in row)
            for row in conn.execute(statement).fetchall()
        ]


def gold_checksums(settings: Settings) -> dict[str, str]:
    """An order-independent checksum of every table in gold."""
    with psycopg.connect(settings.dsn("transformer")) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'gold' order by table_name"
            ).fetchall()
        ]
        checksums = {}
        for table in tables:
            row = conn.execute(
                sql.SQL(
                    "select md5(coalesce(string_agg(t::text, ',' order by t::text), ''))"
                    " from gold.{} as t"
                ).format(sql.Identifier(table))
            ).fetchone()
            assert row is not None
            checksums[table] = str(row[0])
    return checksums


def test_build_passes_every_model_data_test_and_unit_test(build: DbtResult) -> None:
    assert build.success
    unit_tests = {
        node.unique_id.rsplit(".", 1)[-1]: node.status
        for node in build.nodes
        if node.unique_id.startswith("unit_test.")
    }
    assert {
        "test_episodes_merge_overlapping_and_same_day_stays_only",
        "test_readmission_window_elective_died_and_day_31_excluded",
        "test_length_of_stay_counts_calendar_days_same_day_is_zero",
        "test_bed_census_counts_admission_day_not_discharge_day",
        "test_los_summary_counts_discharges_and_long_stays",
        "test_news2_parameter_band_edges",
        "test_news2_spo2_scales_and_supplemental_oxygen",
        "test_news2_bands_and_alerts",
    } <= set(unit_tests)
    assert set(unit_tests.values()) == {"pass"}
    statuses = {node.unique_id: node.status for node in build.nodes}
    news2 = [uid for uid in statuses if "assert_news2_reference_cases" in uid]
    assert [statuses[uid] for uid in news2] == ["pass"]


def test_readmissions_are_flagged_on_episodes(warehouse: Settings, build: DbtResult) -> None:
    rows = query(
        warehouse,
        "select admission_id, episode_id, los_days, is_index_admission, is_readmitted_30d,"
        " days_to_readmission from gold.fct_admissions",
    )
    assert {row[0]: row[1:] for row in rows} == EXPECTED_FLAGS


def test_readmissions_30d_mart(warehouse: Settings, build: DbtResult) -> None:
    rows = query(
        warehouse,
        "select discharge_month, department, primary_diagnosis_code, index_admissions,"
        " readmissions, readmission_rate_pct, is_follow_up_complete"
        " from gold.readmissions_30d order by 1, 2, 3",
    )
    assert rows == EXPECTED_READMISSIONS
    # 2 readmitted of 12 index admissions overall.
    assert query(
        warehouse,
        "select sum(readmissions), sum(index_admissions) from gold.readmissions_30d",
    ) == [(2, 12)]


def test_fct_admissions_maps_vocabularies_and_hides_patient_ids(
    warehouse: Settings, build: DbtResult
) -> None:
    rows = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select admission_id, department, primary_diagnosis_code, source_diagnosis_code,"
            " is_planned, patient_key from gold.fct_admissions",
        )
    }
    assert rows["R3"][:3] == ("EMERGENCY", "R07.4", "R07.4")  # "ER" is an alias
    assert rows["W1"][:3] == ("ORTHOPAEDICS", "UNKNOWN", "ZZZ")  # "Orthopedics" is an alias
    assert rows["X1"][0] == "PAEDIATRICS"
    assert sorted(str(admission) for admission, row in rows.items() if row[3]) == ["U1", "U2"]

    salt = warehouse.patient_key_secret()
    expected_key = hashlib.sha256(f"{salt}|P10".encode()).hexdigest()
    assert {rows[admission][4] for admission in ("R1", "R2", "R3")} == {expected_key}
    assert len({row[4] for row in rows.values()}) == len(PATIENT_IDS)


def test_no_gold_table_holds_a_patient_id(warehouse: Settings, build: DbtResult) -> None:
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'gold'"
            ).fetchall()
        ]
        assert "fct_admissions" in tables
        for table in tables:
            for patient_id in PATIENT_IDS:
                found = conn.execute(
                    sql.SQL("select count(*) from gold.{} as t where t::text like %s").format(
                        sql.Identifier(table)
                    ),
                    (f"%{patient_id}%",),
                ).fetchone()
                assert found == (0,), (table, patient_id)


def test_bed_occupancy_is_a_midnight_census(warehouse: Settings, build: DbtResult) -> None:
    neurology = query(
        warehouse,
        "select census_date, occupied_beds, available_beds, occupancy_pct, is_over_capacity"
        " from gold.bed_occupancy_daily where department = 'NEUROLOGY'"
        " and census_date between '2026-03-09' and '2026-03-14' order by 1",
    )
    assert neurology == [
        ("2026-03-09", 0, 84, D("0.00"), False),
        ("2026-03-10", 1, 84, D("1.19"), False),  # N1's admission day counts
        ("2026-03-11", 2, 84, D("2.38"), False),  # N1, N3 (N2 left the same day)
        ("2026-03-12", 2, 84, D("2.38"), False),  # N3, N4 (N1's discharge day does not count)
        ("2026-03-13", 1, 84, D("1.19"), False),  # N4
        ("2026-03-14", 1, 84, D("1.19"), False),
    ]
    # Every department on every data day; N4, still in hospital, counts to the last day.
    assert query(
        warehouse,
        "select count(*), count(distinct department), min(census_date), max(census_date)"
        " from gold.bed_occupancy_daily",
    ) == [(12 * DATA_DAYS, 12, "2026-03-01", "2026-04-18")]
    assert query(
        warehouse,
        "select occupied_beds from gold.bed_occupancy_daily"
        " where department = 'NEUROLOGY' and census_date = '2026-04-18'",
    ) == [(1,)]
    # On the transfer day (Mar 3) R1 has left cardiology and R2 sleeps in general medicine.
    assert query(
        warehouse,
        "select department, occupied_beds from gold.bed_occupancy_daily"
        " where census_date = '2026-03-03' and occupied_beds > 0 order by 1",
    ) == [("GENERAL_MEDICINE", 1), ("GERIATRICS", 1)]
    # Bed-days = the discharged stays' LOS (50) + N4's open nights Mar 12 .. Apr 18 (38).
    assert query(warehouse, "select sum(occupied_beds) from gold.bed_occupancy_daily") == [(88,)]


def test_disease_prevalence_and_los_summary(warehouse: Settings, build: DbtResult) -> None:
    assert query(
        warehouse,
        "select primary_diagnosis_code, chapter_number, admissions, day_admissions,"
        " share_of_day_pct from gold.disease_prevalence_daily"
        " where admission_date = '2026-03-01' order by 1",
    ) == [("I21.4", 9, 1, 2, D("50.00")), ("R29.6", 18, 1, 2, D("50.00"))]
    assert query(
        warehouse,
        "select chapter_title, admissions from gold.disease_prevalence_daily"
        " where primary_diagnosis_code = 'UNKNOWN'",
    ) == [("Unknown", 1)]
    assert query(
        warehouse,
        "select department, discharges, mean_los_days, stddev_los_days, median_los_days,"
        " stays_7_plus_days, stays_14_plus_days, stays_21_plus_days"
        " from gold.los_summary_monthly where discharge_month = '2026-03-01'"
        " and department in ('GERIATRICS', 'ORTHOPAEDICS') order by 1",
    ) == [
        ("GERIATRICS", 2, D("3.00"), D("2.83"), D("3.00"), 0, 0, 0),  # T1 1, T2 5
        ("ORTHOPAEDICS", 1, D("22.00"), None, D("22.00"), 1, 1, 1),  # W1 22
    ]


def test_dim_date_covers_the_data_with_whole_years(warehouse: Settings, build: DbtResult) -> None:
    assert query(
        warehouse, "select min(calendar_date), max(calendar_date), count(*) from gold.dim_date"
    ) == [("2025-01-01", "2027-12-31", 365 + 365 + 365)]
    assert query(
        warehouse,
        "select iso_year, iso_week, iso_day_of_week, is_weekend, quarter_label"
        " from gold.dim_date where calendar_date = '2027-01-03'",
    ) == [(2026, 53, 7, True, "2027-Q1")]


def test_a_second_build_leaves_gold_identical(warehouse: Settings, build: DbtResult) -> None:
    first = gold_checksums(warehouse)
    assert set(first) >= {
        "avg_los_by_department", "bed_occupancy_daily", "dim_date", "dim_department",
        "dim_diagnosis", "dim_lab_test", "disease_prevalence_daily", "fct_admissions",
        "los_summary_monthly", "readmissions_30d",
    }  # fmt: skip
    run_dbt(warehouse, ["build"])
    assert gold_checksums(warehouse) == first


def test_docs_generate_describes_every_column(warehouse: Settings, build: DbtResult) -> None:
    result = run_dbt(warehouse, ["docs", "generate"])
    catalog = json.loads((result.target_path / "catalog.json").read_text(encoding="utf-8"))
    manifest = json.loads((result.target_path / "manifest.json").read_text(encoding="utf-8"))
    undocumented = []
    for unique_id, entry in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        if node["resource_type"] != "model":
            continue
        documented = {
            name.lower() for name, column in node["columns"].items() if column["description"]
        }
        undocumented += [
            f"{node['name']}.{name}"
            for name in (column.lower() for column in entry["columns"])
            if name not in documented
        ]
    assert undocumented == []
    gold = {entry["metadata"]["name"] for entry in catalog["nodes"].values()
            if entry["metadata"]["schema"] == "gold"}  # fmt: skip
    assert {"fct_admissions", "readmissions_30d", "bed_occupancy_daily"} <= gold
