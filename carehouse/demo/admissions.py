"""A simulated hospital's nightly ADT extract: one admissions CSV per day.

Deterministic for a seed (``random.Random``, no wall clock, no hash order):
the same arguments write byte-identical files. Who is admitted where, when and
for how long is the simulation's (`carehouse.demo.stays`, over the departments
of `carehouse.demo.departments`); this module writes its stays as an ADT
system's extract, faults included:

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
from datetime import date, timedelta
from pathlib import Path

from carehouse.demo.stays import DAY, HOUR, Hospital, Patient, Stay

HEADER = (
    "admission_id,patient_id,admitted_at,discharged_at,department,admission_type,"
    "discharge_disposition,primary_diagnosis_code,total_charges,insurer_id"
)


# Row-level dirt, as cumulative probability thresholds (about 5% of rows in all).
_DIRT_MISSING_INSURER = 0.020
_DIRT_DEPARTMENT = 0.035
_DIRT_DISCHARGE_BEFORE_ADMISSION = 0.038
_DIRT_MALFORMED_DATE = 0.042
_DIRT_UNKNOWN_CODE = 0.044
_DIRT_DUPLICATE = 0.050
# Diagnosis codes that are not ICD-10, for the unknown-code dirt.
_UNKNOWN_CODES = ("R69.X9", "ZZZ", "I21-4", "C99.99", "0000")


def _timestamps(start: date, days: int) -> list[str]:
    # Day strings from 3 days before the window (dirty discharges) to its end.
    return [(start + timedelta(days=offset)).isoformat() for offset in range(-3, days + 1)]


class Writer:
    """Renders stays as CSV lines, adding row-level dirt.

    Args:
        rng: the data set's random stream, shared with the simulation: the dirt's
            draws come between the days' (see `carehouse.demo.stays`).
        start: the first day.
        days: how many days the data set covers.
        end: the end of the last day on the simulation's clock: a stay discharged
            later is still in hospital.
    """

    def __init__(self, rng: random.Random, start: date, days: int, end: int) -> None:
        self.rng = rng
        self.dates = _timestamps(start, days)
        self.end = end
        self.next_id = 100_000_001

    def ts(self, seconds: int) -> str:
        """A time on the simulation's clock as local, naive ISO 8601."""
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

    def lines(self, stays: list[Stay], patients: list[Patient]) -> list[str]:
        """The stays as CSV lines, numbered on from the last call's admission ids.

        Args:
            stays: a day's stays, in the order they are written.
            patients: the simulation's patients, for each stay's insurer now.

        Returns:
            One line per stay (two for an exact duplicate), each ending in a newline.
        """
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

    Raises:
        ValueError: `days` or `admissions_per_day` is below 1.
    """
    if days < 1 or admissions_per_day < 1:
        raise ValueError("days and admissions_per_day must be at least 1")
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets: reproducible on purpose
    folder = landing_dir / "admissions"
    folder.mkdir(parents=True, exist_ok=True)
    start = end_date - timedelta(days=days - 1)
    total = days * admissions_per_day
    hospital = Hospital(rng, days=days, population=max(1, total // 10))
    writer = Writer(rng, start, days, hospital.end)

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
