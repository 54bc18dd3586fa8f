"""A small hand-checked hospital across every source: patient master, admissions, labs, vitals.

Patients and labs go through the real loaders (files written under a temporary folder), so
the file ledger is right; vitals rows are inserted as the loader into the drain's own table.
The expected numbers in the test modules are worked out by hand from the records here; the
comments next to the records give the reasoning. Hospital timezone: UTC (the default).

Patient numbers (MRN-10xx), names, birth dates and addresses are distinctive on purpose:
the privacy tests search every gold table for them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from carehouse.core.settings import Settings
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients
from carehouse.ingest.vitals.tables import ensure_tables as ensure_vitals_tables
from tests.support.warehouse import RawAdmission, load_raw_admissions

# ---- patient master ---------------------------------------------------------------------

PATIENT_HEADER = (
    "patient_id,given_name,family_name,birth_date,sex,address_line,postal_code,insurer_id,"
    "plan,updated_at"
)
_STAMP = "2026-02-01T10:00:00"


def _patient(*fields: str) -> str:
    """One CSV record of the master (quoted where a field holds a comma or a line break)."""
    quoted = [f'"{field}"' if ("," in field or "\n" in field) else field for field in fields]
    return ",".join([*quoted, _STAMP])


# fmt: off
_ZELDA = _patient("MRN-1001", "Zelda", "Quixote", "1961-07-23", "F", "12 Harbour View",
                  "AB12 3CD", "INS_A", "BASIC")
_ZELDA_B = _patient("MRN-1001", "Zelda", "Quixote", "1961-07-23", "F", "12 Harbour View",
                    "AB12 3CD", "INS_B", "PREMIUM")
_YORICK = _patient("MRN-1002", "Yorick", "Vantablack", "1930-01-15", " m ", "4 Mill Road",
                   "ZX9 8YW", "INS_B", "PREMIUM")
_XANTHE = _patient("MRN-1003", "Xanthe", "Umbridge", "2031-05-05", "F", "9 Elm Grove",
                   "CD3 4EF", "INS_A", "BASIC")
_WILHELMINA = _patient("MRN-1004", "Wilhelmina", "Tarkington", "1985-02-28", "Female",
                       "Flat 1, 7 Oak Drive", "EF5 6GH", "", "")
_WILHELMINA_C = _patient("MRN-1004", "Wilhelmina", "Tarkington", "1985-02-28", "Female",
                         "Flat 1, 7 Oak Drive", "EF5 6GH", "INS_C", "STANDARD")
_TOBIAS_NEWLINE = _patient("MRN-1006", "Tobias", "Quarrington", "2000-09-09", "M",
                           "Flat 2\n3 Park Avenue", "IJ9 0KL", "INS_B", "BASIC")
_TOBIAS = _patient("MRN-1006", "Tobias", "Quarrington", "2000-09-09", "M",
                   "Flat 2, 3 Park Avenue", "IJ9 0KL", "INS_B", "BASIC")
_ULRICH = _patient("MRN-1007", "Ulrich", "Rasmussen", "1975-06-30", "M", "1 Kings Road",
                   "GH7 8IJ", "INS_C", "STANDARD")
_VICTOR = _patient("MRN-1005", "Victor", "Sondheim", "1899-12-31", "M", "5 Bridge Street",
                   "KL1 2MN", "INS_A", "BASIC")
_NOBODY = _patient("", "Nobody", "Noname", "1970-01-01", "M", "6 Market Square", "MN3 4OP",
                   "INS_A", "BASIC")
_OPHELIA = _patient("MRN-1008", "Ophelia", "Nightingale", "1970-02-30", "F", "8 Church Lane",
                    "OP5 6QR", "INS_A", "BASIC")
# fmt: on

PATIENT_SNAPSHOTS: dict[str, list[str]] = {
    "2026-03-01": [
        _ZELDA,
        _YORICK,  # sex ' m ' -> M; born 1930: 96 on Mar 1, age band 90+
        _XANTHE,  # born 2031: INVALID_AGE (after the snapshot date)
        _WILHELMINA,  # sex Female -> F; blank insurer -> SELF_PAY
        _VICTOR,  # born 1899: more than 120 years before, INVALID_AGE
        _NOBODY,  # no patient_id: MISSING_PATIENT_ID
        _ULRICH,
        _ZELDA,  # the master sent Zelda twice: one record
        _OPHELIA,  # Feb 30 is no date: INVALID_AGE
    ],
    "2026-03-02": [
        _ZELDA,  # no change: no new version
        _YORICK,
        _XANTHE,
        _WILHELMINA_C,  # insurer INS_C from Mar 2
        _TOBIAS_NEWLINE,  # new patient; the address holds a quoted line break
        _ULRICH,
    ],
    "2026-03-03": [
        _ZELDA_B,  # insurer INS_B from Mar 3
        # Yorick missing: deleted on Mar 3. Ulrich missing: deleted on Mar 3.
        _WILHELMINA_C,
        _TOBIAS,  # the same address once the line break is read as ', ': no change
    ],
    "2026-03-04": [
        _ZELDA_B,
        _YORICK,  # listed again: a new version from Mar 4
        _WILHELMINA_C,
        _TOBIAS,
    ],
}

# patient_id: [(valid_from, valid_to, is_deleted, insurer_id)]
EXPECTED_HISTORY: dict[str, list[tuple[str, str, bool, str]]] = {
    "MRN-1001": [
        ("2026-03-01", "2026-03-03", False, "INS_A"),
        ("2026-03-03", "9999-12-31", False, "INS_B"),
    ],
    "MRN-1002": [
        ("2026-03-01", "2026-03-03", False, "INS_B"),
        ("2026-03-03", "2026-03-04", True, "INS_B"),
        ("2026-03-04", "9999-12-31", False, "INS_B"),
    ],
    "MRN-1004": [
        ("2026-03-01", "2026-03-02", False, "SELF_PAY"),
        ("2026-03-02", "9999-12-31", False, "INS_C"),
    ],
    "MRN-1006": [("2026-03-02", "9999-12-31", False, "INS_B")],
    "MRN-1007": [
        ("2026-03-01", "2026-03-03", False, "INS_C"),
        ("2026-03-03", "9999-12-31", True, "INS_C"),
    ],
}

# Distinct raw records (patient per snapshot date): 8 + 6 + 3 + 4 = 21; 5 quarantined.
EXPECTED_PATIENT_QUARANTINE = {
    ("MRN-1003", "2026-03-01"): "INVALID_AGE",  # born after the snapshot
    ("MRN-1003", "2026-03-02"): "INVALID_AGE",
    ("MRN-1005", "2026-03-01"): "INVALID_AGE",  # more than 120 years before
    ("MRN-1008", "2026-03-01"): "INVALID_AGE",  # Feb 30 is no date
    (None, "2026-03-01"): "MISSING_PATIENT_ID",
}
PATIENT_RECORDS = 21

# Identifiers that must never reach gold.
DIRECT_IDENTIFIERS = (
    "MRN-1001", "MRN-1002", "MRN-1004", "MRN-1006", "MRN-1007", "MRN-9999",
    "Zelda", "Quixote", "Yorick", "Vantablack", "Tarkington", "Quarrington",
    "1961-07-23", "1930-01-15", "1985-02-28", "2000-09-09",
    "Harbour View", "Oak Drive", "Park Avenue", "AB12 3CD", "AB123CD",
)  # fmt: skip


def write_patient_snapshots(folder: Path, days: Sequence[str]) -> Path:
    """Write the master's snapshot files of `days` into `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for day in days:
        lines = "".join(line + "\n" for line in PATIENT_SNAPSHOTS[day])
        (folder / f"patients_{day}.csv").write_text(PATIENT_HEADER + "\n" + lines, encoding="utf-8")
    return folder


# ---- admissions ---------------------------------------------------------------------------


def _admission(
    line: int,
    admission_id: str,
    patient_id: str,
    admitted_at: str,
    discharged_at: str | None,
    charges: str | None,
    insurer_id: str | None,
) -> RawAdmission:
    return RawAdmission(admission_id, patient_id, admitted_at, discharged_at, "CARDIOLOGY",
                        "emergency", "home" if discharged_at else None, "I21.4", charges,
                        insurer_id, source_file="admissions_clinical.csv",
                        source_line=line)  # fmt: skip


ADMISSIONS: tuple[RawAdmission, ...] = (
    # Before the first snapshot (Mar 1): the admission record's payer. LOS 2.
    _admission(1, "H0", "MRN-1001", "2026-02-27T10:00:00", "2026-03-01T10:00:00", "300.00",
               "INS_REC"),
    # Mar 2, Zelda still on INS_A (the change shows on Mar 3). Same-day stay, LOS 0.
    _admission(2, "H1", "MRN-1001", "2026-03-02T10:00:00", "2026-03-02T18:00:00", "1000.00",
               "INS_REC"),
    # Mar 3: the snapshot of the admission day shows INS_B. Discharged in Q2, LOS 30.
    _admission(3, "H2", "MRN-1001", "2026-03-03T09:00:00", "2026-04-02T09:00:00", "2000.00",
               "INS_REC"),
    # Yorick was dropped from the master on Mar 3: the record's payer.
    _admission(4, "H3", "MRN-1002", "2026-03-03T12:00:00", "2026-03-04T12:00:00", "500.00",
               "INS_Z"),
    # Wilhelmina's master payer was blank on Mar 1: SELF_PAY from the history. No charges.
    _admission(5, "H4", "MRN-1004", "2026-03-01T08:00:00", "2026-03-02T08:00:00", None,
               "INS_REC"),
    # Not in the master, blank payer: SELF_PAY by default.
    _admission(6, "H5", "MRN-9999", "2026-03-05T08:00:00", "2026-03-06T08:00:00", "10.50", None),
    # Still in hospital: not in revenue.
    _admission(7, "H6", "MRN-1006", "2026-03-04T08:00:00", None, "99.00", "INS_REC"),
)  # fmt: skip

# admission_id: (insurer_id_at_admission, insurer_source)
EXPECTED_INSURERS = {
    "H0": ("INS_REC", "admission_record"),
    "H1": ("INS_A", "patient_history"),
    "H2": ("INS_B", "patient_history"),
    "H3": ("INS_Z", "admission_record"),
    "H4": ("SELF_PAY", "patient_history"),
    "H5": ("SELF_PAY", "self_pay_default"),
    "H6": ("INS_B", "patient_history"),
}

# (discharge_quarter, quarter_label, insurer_id, discharged, charged, total_charges)
EXPECTED_REVENUE = [
    ("2026-01-01", "2026-Q1", "INS_A", 1, 1, Decimal("1000.00")),
    ("2026-01-01", "2026-Q1", "INS_REC", 1, 1, Decimal("300.00")),
    ("2026-01-01", "2026-Q1", "INS_Z", 1, 1, Decimal("500.00")),
    ("2026-01-01", "2026-Q1", "SELF_PAY", 2, 1, Decimal("10.50")),
    ("2026-04-01", "2026-Q2", "INS_B", 1, 1, Decimal("2000.00")),
]

# ---- labs -------------------------------------------------------------------------------

LOINC = "http://loinc.org"
LOCAL_CODES = "http://hospital.example/codes"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GLUCOSE = ("2345-7", "Glucose [Mass/volume] in Serum or Plasma")
POTASSIUM = ("2823-3", "Potassium [Moles/volume] in Serum or Plasma")
SODIUM = ("2951-2", "Sodium [Moles/volume] in Serum or Plasma")


def observation(
    observation_id: str,
    patient: str,
    code: tuple[str, str] | None,
    effective: str,
    *,
    value: float | None = None,
    unit: str | None = None,
    low: float | None = None,
    high: float | None = None,
    interpretation: str | None = None,
    status: str = "final",
    category: str = "laboratory",
    subject: str | None = None,
    local_code: str | None = None,
    value_string: str | None = None,
) -> dict[str, Any]:
    """A FHIR R4 Observation as a lab system exports it."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "status": status,
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {
            "coding": ([{"system": LOINC, "code": code[0], "display": code[1]}] if code else [])
            + ([{"system": LOCAL_CODES, "code": local_code}] if local_code else [])
        },
        "subject": {"reference": subject or f"Patient/{patient}"},
        "effectiveDateTime": effective,
    }
    if value is not None:
        resource["valueQuantity"] = {
            "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit,
        }  # fmt: skip
    if value_string is not None:
        resource["valueString"] = value_string
    if low is not None or high is not None:
        bounds: dict[str, Any] = {}
        if low is not None:
            bounds["low"] = {"value": low, "unit": unit}
        if high is not None:
            bounds["high"] = {"value": high, "unit": unit}
        resource["referenceRange"] = [bounds]
    if interpretation is not None:
        resource["interpretation"] = [{"coding": [{"code": interpretation}]}]
    return resource


LAB_FILES: dict[str, list[dict[str, Any]]] = {
    "labs_2026-03-06.ndjson": [
        # Normal by its own range (70-99) and flag N. Its amendment below is in mmol/L.
        observation("obs-1", "MRN-1001", GLUCOSE, "2026-03-02T08:00:00Z", value=80,
                    unit="mg/dL", low=70, high=99, interpretation="N"),
        # No range sent: the seed's 70-99 makes 120 abnormal. Amended to 95 below.
        observation("obs-2", "MRN-1001", GLUCOSE, "2026-03-03T08:00:00Z", value=120,
                    unit="mg/dL"),
        # Inside its range (3.5-5.1) but flagged H by the lab: abnormal.
        observation("obs-3", "MRN-1001", POTASSIUM, "2026-03-03T08:00:00Z", value=5.0,
                    unit="mmol/L", low=3.5, high=5.1, interpretation="H"),
        observation("obs-4", "MRN-1002", GLUCOSE, "2026-03-03T09:00:00Z", value=5.5,
                    unit="mmol/L"),  # UNIT_MISMATCH: never converted
        observation("obs-5", "MRN-1002", ("99999-9", "Made up"), "2026-03-03T09:00:00Z",
                    value=1, unit="mg/dL"),  # UNKNOWN_CODE
        observation("obs-6", "MRN-1002", ("8867-4", "Heart rate"), "2026-03-03T09:00:00Z",
                    value=88, unit="/min", category="vital-signs"),  # NOT_LABORATORY
        observation("obs-7", "MRN-1004", GLUCOSE, "2026-03-04T09:00:00Z",
                    value_string="see note"),  # NO_NUMERIC_VALUE
        observation("obs-8", "MRN-1004", GLUCOSE, "2026-03-04T09:00:00Z",
                    status="cancelled"),  # NOT_RESULTED
        observation("obs-9", "MRN-1004", None, "2026-03-04T09:00:00Z", value=90,
                    unit="mg/dL", local_code="GLU-POC"),  # NO_LOINC_CODE
        # Abnormal (130 < 135, flag L), but long before the 90 days of the summary.
        observation("obs-10", "MRN-1004", SODIUM, "2025-12-20T10:00:00Z", value=130,
                    unit="mmol/L", low=135, high=145, interpretation="L"),
        observation("obs-11", "MRN-1004", SODIUM, "2026-03-09T10:00:00Z", value=140,
                    unit="mmol/L", low=135, high=145, interpretation="N"),
        # 99 is the seed's upper bound: normal. Sunday Mar 8, 22:30 UTC: ISO week 10.
        observation("obs-12", "MRN-1001", GLUCOSE, "2026-03-08T23:30:00+01:00", value=99,
                    unit="mg/dL"),
        observation("obs-13", "MRN-1001", GLUCOSE, "2026-03-04T09:00:00Z", value=90,
                    unit="mg/dL", subject="Group/ward-7"),  # MISSING_PATIENT
        observation("obs-14", "MRN-1004", GLUCOSE, "2026-13-01", value=90,
                    unit="mg/dL"),  # INVALID_DATE
    ],
    "labs_2026-03-10.ndjson": [
        # Amendments: obs-2 corrected to 95 (normal); obs-1 re-sent in mmol/L (quarantined,
        # so obs-1 leaves gold).
        observation("obs-2", "MRN-1001", GLUCOSE, "2026-03-03T08:00:00Z", value=95,
                    unit="mg/dL", status="amended"),
        observation("obs-1", "MRN-1001", GLUCOSE, "2026-03-02T08:00:00Z", value=4.4,
                    unit="mmol/L", status="amended"),
        # Below the seed's range and flagged L. Monday Mar 9: ISO week 11.
        observation("obs-15", "MRN-1006", GLUCOSE, "2026-03-09T09:00:00Z", value=60,
                    unit="mg/dL", interpretation="L"),
    ],
}  # fmt: skip

# After both files: observation_id: (reference_low, reference_high, source, is_abnormal)
EXPECTED_LAB_RESULTS = {
    "obs-2": (Decimal("70"), Decimal("99"), "loinc_tests", False),
    "obs-3": (Decimal("3.5"), Decimal("5.1"), "observation", True),
    "obs-10": (Decimal("135"), Decimal("145"), "observation", True),
    "obs-11": (Decimal("135"), Decimal("145"), "observation", False),
    "obs-12": (Decimal("70"), Decimal("99"), "loinc_tests", False),
    "obs-15": (Decimal("70"), Decimal("99"), "loinc_tests", True),
}
EXPECTED_LAB_QUARANTINE = {
    "obs-1": "UNIT_MISMATCH",
    "obs-4": "UNIT_MISMATCH",
    "obs-5": "UNKNOWN_CODE",
    "obs-6": "NOT_LABORATORY",
    "obs-7": "NO_NUMERIC_VALUE",
    "obs-8": "NOT_RESULTED",
    "obs-9": "NO_LOINC_CODE",
    "obs-13": "MISSING_PATIENT",
    "obs-14": "INVALID_DATE",
}
# (iso_week_start_date, loinc_code, results, abnormal_results, abnormal_rate_pct)
EXPECTED_LAB_TRENDS = [
    ("2025-12-15", "2951-2", 1, 1, Decimal("100.00")),  # obs-10 (Saturday Dec 20)
    ("2026-03-02", "2345-7", 2, 0, Decimal("0.00")),  # obs-2 (amended), obs-12
    ("2026-03-02", "2823-3", 1, 1, Decimal("100.00")),  # obs-3
    ("2026-03-09", "2345-7", 1, 1, Decimal("100.00")),  # obs-15
    ("2026-03-09", "2951-2", 1, 0, Decimal("0.00")),  # obs-11
]


def write_lab_files(folder: Path, names: Sequence[str]) -> Path:
    """Write the NDJSON lab files `names` into `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        lines = "".join(json.dumps(resource) + "\n" for resource in LAB_FILES[name])
        (folder / name).write_text(lines, encoding="utf-8")
    return folder


# ---- vitals -----------------------------------------------------------------------------


class Vital(NamedTuple):
    """One drained Kafka message: coordinates and the twelve typed fields."""

    name: str
    topic: str
    partition: int
    offset: int
    device_id: str
    patient_id: str
    observed_at: str
    heart_rate: float
    resp_rate: float
    systolic_bp: float
    diastolic_bp: float
    spo2: float
    spo2_scale: int
    on_oxygen: bool
    consciousness: str
    temperature_c: float
    ingested_ago: timedelta | None = None  # committed this long before now (None: now)


_TOPIC = "patient-vitals"


def _vital(name: str, partition: int, offset: int, device: str, patient: str, at: str,
           hr: float, rr: float, sbp: float, spo2: float, scale: int = 1, o2: bool = False,
           acvpu: str = "A", temp: float = 37.0, *, topic: str = _TOPIC,
           ingested_ago: timedelta | None = None) -> Vital:  # fmt: skip
    return Vital(name, topic, partition, offset, device, patient, at, hr, rr, sbp, 80, spo2,
                 scale, o2, acvpu, temp, ingested_ago)  # fmt: skip


VITALS_FIRST: tuple[Vital, ...] = (
    _vital("v1", 0, 0, "MON-A", "MRN-1001", "2026-03-02T10:05:00Z", 70, 16, 120, 97),  # 0
    # A producer retry of v1 at a later offset (other values): the lowest offset wins.
    _vital("v1-retry", 0, 3, "MON-A", "MRN-1001", "2026-03-02T10:05:00Z", 71, 16, 120, 97),
    _vital("v2", 0, 1, "MON-A", "MRN-1001", "2026-03-02T10:35:00Z", 80, 25, 120, 97),  # RR 3
    # RR 21 (2) + SpO2 94 (1) + pulse 111 (2) = 5: medium.
    _vital("v3", 0, 2, "MON-A", "MRN-1001", "2026-03-02T11:10:00Z", 111, 21, 120, 94),
    # Heart rate 900: implausible.
    _vital("v4", 1, 0, "MON-B", "MRN-1004", "2026-03-02T10:20:00Z", 900, 16, 120, 97),
    # Scale 2 at 97% on oxygen: SpO2 3 + oxygen 2 = 5: medium.
    _vital("v5", 1, 1, "MON-B", "MRN-1004", "2026-03-02T10:50:00Z", 70, 16, 120, 97, 2, True),
    # RR 24 (2) + SpO2 92 (2) + pulse 111 (2) + temperature 38.1 (1) = 7: high.
    _vital("v6", 1, 2, "MON-B", "MRN-1004", "2026-03-02T12:00:00Z", 111, 24, 120, 92,
           temp=38.1),
    _vital("v7", 2, 0, "MON-C", "MRN-1006", "2026-03-03T09:00:00Z", 70, 16, 120, 97),  # 0
)  # fmt: skip

VITALS_SECOND: tuple[Vital, ...] = (
    # Late: observed before v3, drained after it. Normal.
    _vital("v8", 0, 4, "MON-A", "MRN-1001", "2026-03-02T10:50:00Z", 75, 16, 120, 97),
    # Committed by a transaction that started 20 seconds ago, possibly before the first build
    # (within vitals_lookback_seconds, 60).
    _vital("v9", 2, 1, "MON-C", "MRN-1006", "2026-03-03T09:30:00Z", 70, 8, 120, 97,
           ingested_ago=timedelta(seconds=20)),  # RR 8 scores 3: low_medium
    # A copy of v7's set replayed on another topic at a lower offset (0, partition 0 before
    # partition 2): it is now the kept copy, and implausible, so v7's set leaves gold.
    _vital("v7-replay", 0, 0, "MON-C", "MRN-1006", "2026-03-03T09:00:00Z", 0, 16, 120, 97,
           topic="patient-vitals-replay"),
)  # fmt: skip

# After both batches: name: (news2_score, news2_band, is_alert)
EXPECTED_VITALS = {
    "v1": (0, "low", False),
    "v2": (3, "low_medium", True),
    "v3": (5, "medium", True),
    "v5": (5, "medium", True),
    "v6": (7, "high", True),
    "v8": (0, "low", False),
    "v9": (3, "low_medium", True),
}
EXPECTED_VITALS_QUARANTINE = {"v4": "heart_rate", "v7": "heart_rate"}


def observation_set_id(vital: Vital) -> str:
    """The fct_vitals key of a message's set."""
    at = datetime.fromisoformat(vital.observed_at.replace("Z", "+00:00")).astimezone(UTC)
    return f"{vital.device_id}@{at:%Y-%m-%dT%H:%M:%S.%f}Z"


_VITAL_COLUMNS = (
    "kafka_topic", "kafka_partition", "kafka_offset", "message_key", "payload", "device_id",
    "patient_id", "observed_at", "heart_rate", "resp_rate", "systolic_bp", "diastolic_bp",
    "spo2", "spo2_scale", "on_oxygen", "consciousness", "temperature_c", "_ingested_at",
    "_drain_batch_id",
)  # fmt: skip


def insert_vitals(settings: Settings, vitals: Sequence[Vital], batch_id: str) -> None:
    """Commit vitals rows as the drain does (as the loader, into the drain's own table)."""
    insert = sql.SQL("insert into raw_vitals.vitals ({}) values ({})").format(
        sql.SQL(", ").join(sql.Identifier(column) for column in _VITAL_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() for _ in _VITAL_COLUMNS),
    )
    with psycopg.connect(settings.dsn("loader")) as conn:
        ensure_vitals_tables(conn)
        now = conn.execute("select now()").fetchone()
        assert now is not None
        rows = []
        for vital in vitals:
            fields = {
                "device_id": vital.device_id, "patient_id": vital.patient_id,
                "observed_at": vital.observed_at, "heart_rate": vital.heart_rate,
                "resp_rate": vital.resp_rate, "systolic_bp": vital.systolic_bp,
                "diastolic_bp": vital.diastolic_bp, "spo2": vital.spo2,
                "spo2_scale": vital.spo2_scale, "on_oxygen": vital.on_oxygen,
                "consciousness": vital.consciousness, "temperature_c": vital.temperature_c,
            }  # fmt: skip
            ingested_at = now[0] - (vital.ingested_ago or timedelta(0))
            coordinates = (vital.topic, vital.partition, vital.offset, vital.device_id.encode())
            rows.append((*coordinates, json.dumps(fields), *fields.values(), ingested_at, batch_id))
        with conn.cursor() as cursor:
            cursor.executemany(insert, rows)


# ---- everything -------------------------------------------------------------------------


def load_all_at_once(settings: Settings, folder: Path) -> None:
    """Every source's records in one go: all four snapshots, both lab files, both batches."""
    load_patients(settings, write_patient_snapshots(folder / "patients", list(PATIENT_SNAPSHOTS)))
    load_raw_admissions(settings, ADMISSIONS)
    # Lab files in two loads, as in the incremental test: the amendments must be the later
    # versions (a later load wins).
    load_labs(settings, write_lab_files(folder / "labs-1", ["labs_2026-03-06.ndjson"]))
    load_labs(settings, write_lab_files(folder / "labs-2", ["labs_2026-03-10.ndjson"]))
    insert_vitals(settings, VITALS_FIRST, "batch-1")
    insert_vitals(settings, VITALS_SECOND, "batch-2")


def table_checksums(
    settings: Settings,
    tables: Sequence[tuple[str, str]],
    exclude_columns: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """An order-independent checksum per table, rendered under TimeZone UTC and ISO dates.

    `exclude_columns` leaves out columns that legitimately differ between databases loaded
    at different times (ingestion instants).
    """
    checksums: dict[str, str] = {}
    with psycopg.connect(settings.dsn("transformer")) as conn:
        conn.execute("set timezone to 'UTC'")
        conn.execute("set datestyle to 'ISO, YMD'")
        for schema, table in tables:
            columns = [
                row[0]
                for row in conn.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = %s and table_name = %s order by ordinal_position",
                    (schema, table),
                ).fetchall()
                if row[0] not in exclude_columns
            ]
            assert columns, (schema, table)
            row = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(r::text, ',' order by r::text), ''))"
                    " from (select {} from {}.{}) as r"
                ).format(
                    sql.SQL(", ").join(sql.Identifier(column) for column in columns),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            ).fetchone()
            assert row is not None
            checksums[f"{schema}.{table}"] = f"{row[0]}:{row[1]}"
    return checksums


def gold_tables(settings: Settings) -> list[tuple[str, str]]:
    """Every table and view of the gold schema."""
    with psycopg.connect(settings.dsn("transformer")) as conn:
        return [
            ("gold", row[0])
            for row in conn.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'gold' order by table_name"
            ).fetchall()
        ]
