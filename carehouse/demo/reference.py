"""What the demo generators share: scale, the simulated hospital's stays, lab reference data.

`hospital_days` replays the admissions generator's simulation (same seed, same
arguments, same random draws in the same order) without writing files, so that
the patient master and the lab results describe exactly the patients and
admissions that `generate_admissions` writes. It drives the same simulation
(`carehouse.demo.stays`) and the admissions writer, whose row dirt draws from the
same stream; `tests/demo/test_patients.py` checks the two stay in step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from carehouse.demo.admissions import Writer
from carehouse.demo.stays import Hospital, Patient, Stay

# scale 1.0: a year of 1,000,000 admissions (about 100,000 patients) and 1,000,000 lab
# observations.
ADMISSIONS_PER_YEAR = 1_000_000
OBSERVATIONS_PER_YEAR = 1_000_000


def admissions_per_day(scale: float) -> int:
    """Admissions a day at a scale (1.0: about 2,740), for `generate_admissions`."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    return max(1, round(ADMISSIONS_PER_YEAR * scale / 365))


def scale_of(per_day: int) -> float:
    """The scale at which `admissions_per_day` gives `per_day` (for a `--per-day` option)."""
    if per_day < 1:
        raise ValueError("per_day must be at least 1")
    return per_day * 365 / ADMISSIONS_PER_YEAR


def observations_per_day(scale: float) -> int:
    """Lab observations a day at a scale (1.0: about 2,740)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    return max(1, round(OBSERVATIONS_PER_YEAR * scale / 365))


def patient_id(index: int) -> str:
    """The id the admissions generator gives the simulation's patient `index`."""
    return f"P{index + 1:07d}"


@dataclass(frozen=True, slots=True)
class Admission:
    """One simulated stay with the id the admissions file gives it."""

    admission_id: str
    patient: int  # index into the simulation's patients
    department: str
    admitted: int  # seconds since the first day's midnight
    discharged: int  # may lie after the last day: still in hospital then


@dataclass(frozen=True)
class HospitalDay:
    """The simulation after one day: the day's admissions, every patient's insurer."""

    day: int  # 0 is the first day
    date: date
    admissions: list[Admission]
    registered: int  # patients registered so far: indices 0 .. registered - 1
    registered_before: int  # patients registered before the first day (the first indices)
    # The simulation's patients, live: read the day's insurers before the next day is made.
    _patients: list[Patient]

    def insurer(self, index: int) -> str:
        """A patient's insurer at the end of the day ('' for self-pay)."""
        return self._patients[index].insurer


def hospital_days(
    *, seed: int, end_date: date, days: int, scale: float, file_defects: bool = True
) -> Iterator[HospitalDay]:
    """The stays `generate_admissions` writes for these arguments, day by day.

    `file_defects` must match the admissions generator's: choosing the defective
    files draws from the same random stream.
    """
    per_day = admissions_per_day(scale)
    if days < 1:
        raise ValueError("days must be at least 1")
    # The replay: exactly generate_admissions' calls on its random stream, in order.
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets: reproducible on purpose
    start = end_date - timedelta(days=days - 1)
    population = max(1, days * per_day // 10)
    hospital = Hospital(rng, days=days, population=population)
    writer = Writer(rng, start, days, hospital.end)
    if file_defects:
        rng.sample(range(days), days)
    for day in range(days):
        weekday = (start + timedelta(days=day)).weekday()
        volume = per_day * (0.88 if weekday >= 5 else 1.05)
        planned = len(hospital.planned.get(day, ()))
        fresh = max(0, round(volume * rng.uniform(0.95, 1.05)) - planned)
        stays: list[Stay] = hospital.day(day, fresh)
        first_id = writer.next_id
        writer.lines(stays, hospital.patients)  # draws the row dirt; ids follow stay order
        patients: list[Patient] = hospital.patients
        yield HospitalDay(
            day=day,
            date=start + timedelta(days=day),
            admissions=[
                Admission(
                    admission_id=f"A{first_id + offset}",
                    patient=stay.patient,
                    department=stay.department.name,
                    admitted=stay.admitted,
                    discharged=stay.discharged,
                )
                for offset, stay in enumerate(stays)
            ],
            registered=len(patients),
            registered_before=population,
            _patients=patients,
        )


# ---- lab reference data ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabTest:
    """A laboratory test as the demo lab reports it (LOINC code, UCUM unit, reference range)."""

    loinc: str
    display: str
    unit: str  # UCUM, as the test is reported
    low: float
    high: float
    decimals: int
    mean: float  # of results in range
    sd: float
    critical_low: float | None = None
    critical_high: float | None = None


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL",
            70, 99, 0, 88, 8, 40, 400),
    LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL",
            12, 17.5, 1, 14.2, 1.2, 7, 20),
    LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL",
            0.6, 1.3, 2, 0.9, 0.15, None, 10),
    LabTest("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L",
            135, 145, 0, 140, 2, 120, 160),
    LabTest("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L",
            3.5, 5.1, 1, 4.3, 0.3, 2.5, 6.5),
    LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL",
            4.5, 11, 1, 7.5, 1.4, 1, 30),
    LabTest("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL",
            150, 400, 0, 260, 45, 20, 1000),
    LabTest("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L",
            0, 10, 1, 3, 2, None, 300),
    LabTest("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL",
            7, 20, 0, 13, 3, None, 100),
    LabTest("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L", 7, 56, 0, 25, 9, None, 1000),
    LabTest("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L",
            0.5, 2.2, 1, 1.2, 0.35, None, 4),
)  # fmt: skip
LAB_TESTS_BY_LOINC = {test.loinc: test for test in LAB_TESTS}

# Panels a ward orders, by weight: (name, LOINC codes).
LAB_PANELS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("basic metabolic", 30, ("2345-7", "2951-2", "2823-3", "2160-0", "3094-0")),
    ("blood count", 30, ("718-7", "6690-2", "777-3")),
    ("inflammation", 15, ("1988-5", "6690-2")),
    ("glucose", 15, ("2345-7",)),
    ("liver and lactate", 10, ("1742-6", "2524-7")),
)

# A result sent in another unit than the test's (the lab's analyser set up differently):
# the factor from the test's unit, and the reference range in that unit.
UNIT_MISMATCHES: dict[str, tuple[str, float, float, float, int]] = {
    "2345-7": ("mmol/L", 1 / 18.016, 3.9, 5.5, 1),
    "2160-0": ("umol/L", 88.42, 53, 115, 0),
    "718-7": ("g/L", 10, 120, 175, 0),
}

# Vital signs a ward records (LOINC, display, UCUM unit, mean, sd, decimals).
VITAL_SIGNS: tuple[tuple[str, str, str, float, float, int], ...] = (
    ("8867-4", "Heart rate", "/min", 82, 14, 0),
    ("9279-1", "Respiratory rate", "/min", 17, 3, 0),
    ("8310-5", "Body temperature", "Cel", 36.9, 0.5, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 96, 2, 0),
)
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure", 128, 18)
DIASTOLIC = ("8462-4", "Diastolic blood pressure", 78, 11)

# Codes not in LOINC, as a lab's own catalogue sends them.
UNKNOWN_LOINC_CODES = ("99999-9", "12345-0", "LAB-GLU-POC", "0000-0")
LOCAL_CODE_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/lab-tests"
