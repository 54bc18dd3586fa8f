"""The simulated hospital's departments: how each one's stays look.

Each department has its own mix of admission types, skewed (log-normal)
lengths of stay, mortality and readmission risk, daily charge and ICD-10
codes. The admissions simulation (`carehouse.demo.stays`) draws from this
table in its order: changing, adding or reordering a department changes every
data set a seed gives.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Department:
    """How one department's stays look."""

    name: str
    share: float  # of fresh admissions
    types: tuple[int, int, int]  # weights of emergency, urgent, elective
    los_median_hours: float
    los_sigma: float  # of the log-normal: larger means a longer tail
    death_rate: float
    readmit_rate: float  # unplanned return within 30 days of a discharge alive
    daily_charge: float
    codes: tuple[str, ...]


DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "CARDIOLOGY",
        9,
        (60, 25, 15),
        72,
        0.8,
        0.02,
        0.14,
        1900,
        ("I21.4", "I50.9", "I48.9", "I20.0", "R07.4", "I25.1"),
    ),
    Department(
        "EMERGENCY",
        14,
        (90, 10, 0),
        14,
        0.7,
        0.01,
        0.10,
        1400,
        ("R10.4", "S06.0", "T78.4", "R55", "J06.9", "S52.5"),
    ),
    Department(
        "GENERAL_MEDICINE",
        18,
        (65, 30, 5),
        96,
        0.8,
        0.03,
        0.13,
        1100,
        ("A41.9", "N39.0", "E11.9", "J18.9", "K92.2", "E86"),
    ),
    Department(
        "GENERAL_SURGERY",
        10,
        (35, 25, 40),
        72,
        0.9,
        0.01,
        0.08,
        2300,
        ("K35.8", "K80.2", "K40.9", "K56.6", "K57.3"),
    ),
    Department(
        "ICU",
        3,
        (80, 20, 0),
        120,
        1.0,
        0.14,
        0.12,
        5200,
        ("J96.0", "A41.9", "R57.0", "I46.9", "J80"),
    ),
    Department(
        "MATERNITY",
        8,
        (30, 50, 20),
        40,
        0.5,
        0.0005,
        0.03,
        1300,
        ("O80", "O82", "O70.0", "O99.4", "O14.1"),
    ),
    Department(
        "NEUROLOGY",
        4,
        (65, 25, 10),
        120,
        0.8,
        0.04,
        0.10,
        1700,
        ("I63.9", "G40.9", "G45.9", "G35", "I61.9"),
    ),
    Department(
        "ONCOLOGY",
        6,
        (25, 25, 50),
        96,
        0.9,
        0.05,
        0.12,
        2100,
        ("C34.9", "C50.9", "C18.9", "C61", "C91.0", "Z51.1"),
    ),
    Department(
        "ORTHOPAEDICS",
        8,
        (30, 20, 50),
        96,
        0.7,
        0.01,
        0.07,
        1900,
        ("S72.0", "M17.1", "M16.1", "S82.2", "M54.5"),
    ),
    Department(
        "PAEDIATRICS",
        7,
        (60, 35, 5),
        36,
        0.7,
        0.001,
        0.05,
        1200,
        ("J21.9", "A09.9", "J45.9", "R50.9", "P59.9"),
    ),
    Department(
        "RESPIRATORY",
        7,
        (70, 25, 5),
        120,
        0.8,
        0.04,
        0.18,
        1200,
        ("J44.1", "J18.9", "J45.9", "J84.1", "U07.1"),
    ),
    Department(
        "GERIATRICS",
        6,
        (70, 25, 5),
        216,
        0.8,
        0.06,
        0.20,
        950,
        ("R29.6", "F05.9", "S72.0", "N39.0", "E86"),
    ),
)
