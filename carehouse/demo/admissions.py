"""A simulated hospital's nightly ADT extract: one admissions CSV per day.

Deterministic for a seed (``random.Random``, no wall clock, no hash order):
the same arguments write byte-identical files. What it models:

- departments with their own mix of admission types, skewed (log-normal)
  lengths of stay, mortality and readmission risk, and ICD-10 codes;
- patients: a population of about a tenth of the admissions when the horizon
  allows it. A patient is never in two beds at once, and is not picked for an
  unrelated admission within 30 days of a discharge, so that every 30-day
  readmission in the data is one the simulation meant (short horizons therefore
  need more patients than a tenth; the population grows as needed);
- real readmission patterns: unplanned returns 1-30 days after a discharge
  alive (more often from geriatrics, respiratory, cardiology), a few just
  outside the window (31-40 days), planned oncology cycles (elective, not
  readmissions), internal ward transfers (back-to-back stays);
- insurer changes over time and self-pay patients (empty insurer);
- about 5% dirt: missing insurer, mixed-case or padded departments, exact
  duplicate rows, discharge before admission, malformed dates, unknown codes;
- file defects (``file_defects=True``): a UTF-8 BOM, CRLF line ends, a
  quoted newline inside a field, a truncated last line, and one file re-sent
  under another name.

Each day's file holds the admissions that started that day, as known at the
end of ``end_date``: stays still open then have an empty ``discharged_at``.
Timestamps are local, naive ISO 8601 (``YYYY-MM-DDTHH:MM:SS``).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from heapq import heappop, heappush
from itertools import accumulate
from math import exp, log
from pathlib import Path

HEADER = (
    "admission_id,patient_id,admitted_at,discharged_at,department,admission_type,"
    "discharge_disposition,primary_diagnosis_code,total_charges,insurer_id"
)

INSURERS = ("INS001", "INS002", "INS003", "INS004", "INS005", "INS006", "INS007", "INS008")
_INSURER_WEIGHTS = (24, 18, 14, 12, 10, 9, 7, 6)
SELF_PAY_SHARE = 0.03
INSURER_CHANGE_RATE = 0.02  # per admission: the patient changed plan since the last stay

DAY = 86_400
HOUR = 3_600
READMISSION_WINDOW_DAYS = 30

# Row-level dirt, as cumulative probability thresholds (about 5% of rows in all).
_DIRT_MISSING_INSURER = 0.020
_DIRT_DEPARTMENT = 0.035
_DIRT_DISCHARGE_BEFORE_ADMISSION = 0.038
_DIRT_MALFORMED_DATE = 0.042
_DIRT_UNKNOWN_CODE = 0.044
_DIRT_DUPLICATE = 0.050


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
_BY_NAME = {department.name: department for department in DEPARTMENTS}
_DEPARTMENT_CUM = tuple(accumulate(department.share for department in DEPARTMENTS))
_INSURER_CUM = tuple(accumulate(_INSURER_WEIGHTS))
_TYPES = ("emergency", "urgent", "elective")
_TYPE_CUM = {department.name: tuple(accumulate(department.types)) for department in DEPARTMENTS}
# Where unplanned readmissions land when not back in the same department.
_READMIT_DEPARTMENTS = ("EMERGENCY", "GENERAL_MEDICINE", "GERIATRICS", "RESPIRATORY", "CARDIOLOGY")
_UNKNOWN_CODES = ("R69.X9", "ZZZ", "I21-4", "C99.99", "0000")
# Emergency arrivals by hour of day: a day peak, a quiet night.
_EMERGENCY_HOUR_CUM = tuple(
    accumulate((2, 2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 4, 4, 3, 3))
)


@dataclass(slots=True)
class _Patient:
    insurer: str
    # Not eligible for an unrelated admission before this instant (seconds):
    # in hospital, or within 30 days of a discharge.
    busy_until: int = -(10**12)


@dataclass(slots=True)
class _Stay:
    patient: int
    department: Department
    admission_type: str
    admitted: int  # seconds since the first day's midnight
    discharged: int
    disposition: str
    code: str
    charges: float


@dataclass(slots=True)
class _Planned:
    """A stay decided by an earlier one: a readmission, a chemo cycle, a ward transfer."""

    patient: int
    department: Department
    admission_type: str
    at: int | None  # exact start (ward transfer) or None: a time on the day


class _Hospital:
    """The simulation state; one instance writes one data set."""

    def __init__(self, rng: random.Random, *, days: int, population: int) -> None:
        self.rng = rng
        self.days = days
        self.end = days * DAY
        self.patients: list[_Patient] = [self._new_patient() for _ in range(population)]
        self.planned: dict[int, list[_Planned]] = {}
        # Patients free for an unrelated admission, and a heap of (busy_until, patient)
        # of the others; an entry is stale when the patient's busy_until moved since.
        self.free: list[int] = list(range(population))
        self.resting: list[tuple[int, int]] = []

    def _new_patient(self) -> _Patient:
        rng = self.rng
        if rng.random() < SELF_PAY_SHARE:
            return _Patient(insurer="")
        return _Patient(insurer=INSURERS[bisect(_INSURER_CUM, rng.random() * _INSURER_CUM[-1])])

    def _busy(self, index: int, until: int) -> None:
        self.patients[index].busy_until = until
        heappush(self.resting, (until, index))

    def _fresh_patient(self, day_start: int) -> int:
        """A random patient free since the start of the day, or a new one."""
        resting, free, patients = self.resting, self.free, self.patients
        while resting and resting[0][0] <= day_start:
            until, index = heappop(resting)
            if patients[index].busy_until == until:
                free.append(index)
        if not free:
            patients.append(self._new_patient())
            return len(patients) - 1
        position = int(self.rng.random() * len(free))
        free[position], free[-1] = free[-1], free[position]
        return free.pop()

    def _plan(self, day: int, planned: _Planned) -> None:
        if day < self.days:
            self.planned.setdefault(day, []).append(planned)
            # Keep the patient out of unrelated admissions until the planned one.
            until = (day + 1) * DAY
            if self.patients[planned.patient].busy_until < until:
                self._busy(planned.patient, until)

    def day(self, day: int, fresh: int) -> list[_Stay]:
        """All stays starting on `day`: planned ones, then `fresh` unrelated ones."""
        rng = self.rng
        queue = self.planned.pop(day, [])
        for _ in range(fresh):
            department = DEPARTMENTS[bisect(_DEPARTMENT_CUM, rng.random() * _DEPARTMENT_CUM[-1])]
            cumulative = _TYPE_CUM[department.name]
            kind = _TYPES[bisect(cumulative, rng.random() * cumulative[-1])]
            queue.append(_Planned(-1, department, kind, None))
        stays: list[_Stay] = []
        # Ward transfers append same-day stays to the queue while it is walked.
        index = 0
        while index < len(queue):
            stays.append(self._stay(day, queue[index], queue))
            index += 1
        stays.sort(key=lambda stay: stay.admitted)
        return stays

    def _start(self, day: int, kind: str) -> int:
        rng = self.rng
        if kind == "elective":
            return day * DAY + 7 * HOUR + int(rng.random() * 4 * HOUR)
        if kind == "urgent":
            return day * DAY + 8 * HOUR + int(rng.random() * 12 * HOUR)
        hour = bisect(_EMERGENCY_HOUR_CUM, rng.random() * _EMERGENCY_HOUR_CUM[-1])
        return day * DAY + hour * HOUR + int(rng.random() * HOUR)

    def _stay(self, day: int, planned: _Planned, queue: list[_Planned]) -> _Stay:
        rng = self.rng
        department = planned.department
        admitted = (
            planned.at if planned.at is not None else self._start(day, planned.admission_type)
        )
        patient_index = planned.patient if planned.patient >= 0 else self._fresh_patient(day * DAY)
        patient = self.patients[patient_index]
        if rng.random() < INSURER_CHANGE_RATE:
            patient.insurer = INSURERS[bisect(_INSURER_CUM, rng.random() * _INSURER_CUM[-1])]

        chemo = department.name == "ONCOLOGY" and planned.admission_type == "elective"
        if chemo and rng.random() < 0.7:
            # A chemotherapy day case: same-day discharge.
            hours = 3 + rng.random() * 6
        else:
            median = department.los_median_hours
            if planned.admission_type == "elective":
                median *= 0.8
            hours = min(exp(rng.gauss(log(median), department.los_sigma)), 120 * 24)
        discharged = admitted + int(hours * HOUR)
        if hours > 24:
            # Long stays end on a ward round: late morning to early evening.
            discharged = (discharged // DAY) * DAY + 10 * HOUR + int(rng.random() * 8 * HOUR)
            discharged = max(discharged, admitted + HOUR)

        roll = rng.random()
        death_rate = department.death_rate * (1.5 if hours > 240 else 1.0)
        if roll < death_rate:
            disposition = "died"
        elif roll < death_rate + 0.03:
            disposition = "transfer"  # to another acute hospital
        elif roll < death_rate + 0.06:
            disposition = "other"  # care home, self-discharge
        else:
            disposition = "home"

        days_in = max(1, (discharged - admitted) // DAY)
        charges = (800 + department.daily_charge * days_in) * exp(rng.gauss(0, 0.25))
        stay = _Stay(
            patient=patient_index,
            department=department,
            admission_type=planned.admission_type,
            admitted=admitted,
            discharged=discharged,
            disposition=disposition,
            code=department.codes[int(rng.random() * len(department.codes))],
            charges=charges,
        )
        self._busy(patient_index, discharged + READMISSION_WINDOW_DAYS * DAY)
        if discharged < self.end:
            self._follow_up(stay, queue, day)
        return stay

    def _follow_up(self, stay: _Stay, queue: list[_Planned], day: int) -> None:
        """Plan what a discharge leads to: ward transfer, chemo cycle, readmission."""
        rng = self.rng
        if stay.disposition == "died":
            return
        discharge_day = stay.discharged // DAY
        if stay.disposition == "home" and rng.random() < 0.01:
            # An internal ward transfer: a back-to-back stay in another department.
            stay.disposition = "transfer"
            target = _BY_NAME[rng.choice(_READMIT_DEPARTMENTS)]
            follow = _Planned(stay.patient, target, "urgent", stay.discharged)
            if discharge_day == day:
                queue.append(follow)
            else:
                self._plan(discharge_day, follow)
            return
        if stay.disposition == "transfer":
            return
        chemo = stay.department.name == "ONCOLOGY" and stay.admission_type == "elective"
        if chemo and rng.random() < 0.6:
            cycle = discharge_day + rng.choice((14, 21, 21, 28))
            self._plan(cycle, _Planned(stay.patient, stay.department, "elective", None))
            return
        roll = rng.random()
        if roll < stay.department.readmit_rate:
            # Most returns come early after a discharge.
            gap = min(READMISSION_WINDOW_DAYS, 1 + int(rng.expovariate(1 / 7)))
        elif roll < stay.department.readmit_rate + 0.01:
            gap = READMISSION_WINDOW_DAYS + 1 + int(rng.random() * 10)  # just outside the window
        else:
            return
        department = stay.department
        if rng.random() < 0.5:
            department = _BY_NAME[rng.choice(_READMIT_DEPARTMENTS)]
        kind = "emergency" if rng.random() < 0.7 else "urgent"
        self._plan(discharge_day + gap, _Planned(stay.patient, department, kind, None))


def _timestamps(start: date, days: int) -> list[str]:
    # Day strings from 3 days before the window (dirty discharges) to its end.
    return [(start + timedelta(days=offset)).isoformat() for offset in range(-3, days + 1)]


class _Writer:
    """Renders stays as CSV lines, adding row-level dirt."""

    def __init__(self, rng: random.Random, start: date, days: int, end: int) -> None:
        self.rng = rng
        self.dates = _timestamps(start, days)
        self.end = end
        self.next_id = 100_000_001

    def ts(self, seconds: int) -> str:
        day, rest = divmod(seconds, DAY)
        hour, rest = divmod(rest, HOUR)
        minute, second = divmod(rest, 60)
        return f"{self.dates[day + 3]}T{hour:02d}:{minute:02d}:{second:02d}"

    def _malformed(self, seconds: int) -> str:
        rng = self.rng
        day, rest = divmod(seconds, DAY)
        year, month, mday = self.dates[day + 3].split("-")
        hour, minute = rest // HOUR, rest % HOUR // 60
        return rng.choice(
            (
                f"{year}/{month}/{mday} {hour:02d}:{minute:02d}",
                f"{mday}/{month}/{year} {hour:02d}:{minute:02d}:00",
                f"{year}-{month}-{mday}T{hour + 24:02d}:{minute:02d}:00",
                f"{year}-02-30T{hour:02d}:{minute:02d}:00",
                "NOT RECORDED",
            )
        )

    def lines(self, stays: list[_Stay], patients: list[_Patient]) -> list[str]:
        rng = self.rng
        out: list[str] = []
        for stay in stays:
            admission_id = f"A{self.next_id}"
            self.next_id += 1
            admitted = self.ts(stay.admitted)
            if stay.discharged < self.end:
                discharged = self.ts(stay.discharged)
                disposition = stay.disposition
            else:
                discharged = disposition = ""  # still in hospital
            department = stay.department.name
            code = stay.code
            insurer = patients[stay.patient].insurer
            roll = rng.random()
            if roll < _DIRT_MISSING_INSURER:
                insurer = ""
            elif roll < _DIRT_DEPARTMENT:
                department = rng.choice(
                    (department.lower(), department.title(), f" {department}", f"{department}  ")
                )
            elif roll < _DIRT_DISCHARGE_BEFORE_ADMISSION and discharged:
                discharged = self.ts(stay.admitted - HOUR - int(rng.random() * 47 * HOUR))
            elif roll < _DIRT_MALFORMED_DATE:
                if discharged and rng.random() < 0.5:
                    discharged = self._malformed(stay.discharged)
                else:
                    admitted = self._malformed(stay.admitted)
            elif roll < _DIRT_UNKNOWN_CODE:
                code = rng.choice(_UNKNOWN_CODES)
            line = (
                f"{admission_id},P{stay.patient + 1:07d},{admitted},{discharged},{department},"
                f"{stay.admission_type},{disposition},{code},{stay.charges:.2f},{insurer}\n"
            )
            out.append(line)
            if _DIRT_UNKNOWN_CODE <= roll < _DIRT_DUPLICATE:
                out.append(line)  # the extract sent the row twice
        return out


def generate_admissions(
    landing_dir: Path,
    *,
    seed: int,
    end_date: date,
    days: int,
    admissions_per_day: int,
    file_defects: bool = True,
) -> list[Path]:
    """Write `days` daily admissions CSVs ending at `end_date` under `landing_dir/admissions`.

    Returns the files written, in day order, the re-sent copy last.
    `file_defects=False` leaves out the structural defects (BOM, CRLF, quoted
    newline, truncated line, re-sent file), e.g. for a throughput benchmark.
    """
    if days < 1 or admissions_per_day < 1:
        raise ValueError("days and admissions_per_day must be at least 1")
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets: reproducible on purpose
    folder = landing_dir / "admissions"
    folder.mkdir(parents=True, exist_ok=True)
    start = end_date - timedelta(days=days - 1)
    total = days * admissions_per_day
    hospital = _Hospital(rng, days=days, population=max(1, total // 10))
    writer = _Writer(rng, start, days, hospital.end)

    # Which file carries which defect: distinct days when there are five or more.
    bom_day = crlf_day = newline_day = truncated_day = resent_day = -1
    if file_defects:
        order = rng.sample(range(days), days)
        bom_day, crlf_day, newline_day, truncated_day, resent_day = (
            order[i % days] for i in range(5)
        )
        if days == 1:
            resent_day = -1  # re-sending the only file would just double the data set

    written: list[Path] = []
    for day in range(days):
        weekday = (start + timedelta(days=day)).weekday()
        volume = admissions_per_day * (0.88 if weekday >= 5 else 1.05)
        planned = len(hospital.planned.get(day, ()))
        fresh = max(0, round(volume * rng.uniform(0.95, 1.05)) - planned)
        stays = hospital.day(day, fresh)
        lines = writer.lines(stays, hospital.patients)
        if day == newline_day and lines:
            lines[len(lines) // 2] = _with_quoted_newline(lines[len(lines) // 2])
        text = HEADER + "\n" + "".join(lines)
        if day == truncated_day and lines:
            # The transfer broke off mid-record: no final newline, fields missing.
            last = lines[-1]
            text = text[: len(text) - len(last) + len(last) * 2 // 3]
        if day == crlf_day:
            text = text.replace("\n", "\r\n")
        data = text.encode("utf-8")
        if day == bom_day:
            data = b"\xef\xbb\xbf" + data
        path = folder / f"admissions_{(start + timedelta(days=day)).isoformat()}.csv"
        path.write_bytes(data)
        written.append(path)
    if resent_day >= 0:
        original = written[resent_day]
        copy = original.with_name(f"{original.stem}_resent.csv")
        copy.write_bytes(original.read_bytes())
        written.append(copy)
    return written


def _with_quoted_newline(line: str) -> str:
    # A padded department with a line break, as some ADT exports emit: quoted per RFC 4180.
    fields = line.rstrip("\n").split(",")
    fields[4] = f'"{fields[4].strip()}\n"'
    return ",".join(fields) + "\n"
