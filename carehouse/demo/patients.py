"""A simulated hospital's patient master: one CSV snapshot of every registered patient a day.

Deterministic for a seed. The patients are exactly those of the admissions
generator for the same seed, end date, days and scale
(`carehouse.demo.reference.hospital_days`): the patients registered before the
window, then each new patient on the day of their first admission. What changes
from one day to the next, the source of the SCD2 history:

- the insurer, when the simulation changed it at an admission (the snapshot of
  the admission day shows it, `updated_at` is the admission time), and with it
  the plan;
- addresses (a move) and plans, for about 0.1% of patients a day.

About 5% dirt, kept by a patient from day to day as a real master would: birth
dates that cannot be (in the future, more than 120 years ago, 2026-02-30),
missing insurer, mixed-case or padded sex, padded names; and duplicate rows
(a few a day). File defects (``file_defects=True``): a UTF-8 BOM, CRLF line
ends, a quoted newline inside an address, a truncated last line, and one file
re-sent under another name. Timestamps are local, naive ISO 8601.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from carehouse.demo.reference import hospital_days, patient_id
from carehouse.demo.stays import DAY

HEADER = (
    "patient_id,given_name,family_name,birth_date,sex,address_line,postal_code,"
    "insurer_id,plan,updated_at"
)
PLANS = ("BASIC", "STANDARD", "PREMIUM")
_PLAN_WEIGHTS = (50, 35, 15)

# Share of registered patients a day who move or change plan.
DAILY_MOVE_RATE = 0.0006
DAILY_PLAN_CHANGE_RATE = 0.0004
# Share of a day's rows the master sends twice.
DUPLICATE_ROW_RATE = 0.005

# Per-patient dirt, cumulative probability thresholds (about 5% of patients in all).
_DIRT_BIRTH_DATE = 0.010
_DIRT_SEX = 0.025
_DIRT_NAME = 0.040
_DIRT_INSURER = 0.050

_FEMALE = ("Anna", "Maria", "Emma", "Sofia", "Olivia", "Mia", "Laura", "Julia", "Sarah",
           "Lena", "Clara", "Eva", "Ines", "Nora", "Alice", "Marta", "Helen", "Grace",
           "Amira", "Yuki", "Fatima", "Chloe", "Ruth", "Irene", "Zoe")  # fmt: skip
_MALE = ("James", "Lucas", "Noah", "Liam", "David", "Daniel", "Paul", "Thomas", "Peter",
         "Ahmed", "Mateo", "Leon", "Hugo", "Jonas", "Samuel", "Ivan", "Omar", "Kenji",
         "Arthur", "Felix", "Oscar", "Victor", "Elias", "Adam", "Martin")  # fmt: skip
_FAMILY = ("Smith", "Müller", "García", "Rossi", "Nowak", "Dubois", "Jensen", "Silva",
           "Kowalski", "Novak", "Schmidt", "Martin", "Bernard", "Fischer", "Weber", "Moreau",
           "Jones", "Brown", "Taylor", "Wilson", "O'Brien", "Nguyen", "Kim", "Khan", "Cohen",
           "Petrov", "Ivanova", "Andersen", "Larsen", "Costa", "Ferreira", "Yilmaz",
           "Papadopoulos", "De Vries", "Van Dijk", "Horvath", "Tanaka", "Singh", "Ali",
           "Haddad")  # fmt: skip
_STREETS = ("Station Road", "High Street", "Church Lane", "Mill Road", "Park Avenue",
            "Victoria Street", "Green Lane", "Oak Drive", "Elm Grove", "Kings Road",
            "Queen Street", "Bridge Street", "Market Square", "School Lane", "Orchard Way",
            "Riverside", "Hill Crescent", "North Street", "Meadow Close",
            "Harbour View")  # fmt: skip
# Age bands of a hospital's patients: (share, youngest, oldest).
_AGE_BANDS = ((10, 0, 17), (30, 18, 49), (30, 50, 74), (30, 75, 100))


@dataclass(slots=True)
class _Record:
    """One patient as the master holds them."""

    index: int
    given: str
    family: str
    birth: str
    sex: str
    address: str
    postal: str
    insurer: str
    plan: str
    updated_at: str
    blank_insurer: bool  # dirt: the master lost the insurer
    line: str = ""

    def render(self) -> None:
        insurer = "" if self.blank_insurer else self.insurer
        fields = (
            patient_id(self.index),
            self.given,
            self.family,
            self.birth,
            self.sex,
            self.address,
            self.postal,
            insurer,
            self.plan,
            self.updated_at,
        )
        self.line = ",".join(_csv(field) for field in fields) + "\n"


def _csv(value: str) -> str:
    if any(char in value for char in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


class _Registry:
    """The master's patients, created and changed with their own random stream."""

    def __init__(self, rng: random.Random, start: date) -> None:
        self.rng = rng
        self.start = start
        self.records: list[_Record] = []

    def stamp(self, seconds: int) -> str:
        """Seconds since the first day's midnight as a local timestamp."""
        midnight = datetime.combine(self.start, datetime.min.time())
        return (midnight + timedelta(seconds=seconds)).isoformat()

    def register(self, index: int, insurer: str, at: int) -> None:
        rng = self.rng
        sex = "F" if rng.random() < 0.51 else "M"
        _, youngest, oldest = rng.choices(_AGE_BANDS, [band[0] for band in _AGE_BANDS])[0]
        age_days = int((youngest + rng.random() * (oldest - youngest + 1)) * 365.25)
        birth = (self.start - timedelta(days=age_days)).isoformat()
        given = rng.choice(_FEMALE if sex == "F" else _MALE)
        family = rng.choice(_FAMILY)
        roll = rng.random()
        if roll < _DIRT_BIRTH_DATE:
            birth = self._impossible_birth_date()
        elif roll < _DIRT_SEX:
            sex = rng.choice(("f", "m", "Female", "MALE", " F", "M "))
        elif roll < _DIRT_NAME:
            if rng.random() < 0.5:
                given = rng.choice((f" {given}", f"{given}  ", f"  {given} "))
            else:
                family = rng.choice((f" {family}", f"{family} ", f"{family.upper()}  "))
        record = _Record(
            index=index,
            given=given,
            family=family,
            birth=birth,
            sex=sex,
            address="",
            postal="",
            insurer=insurer,
            plan=self._plan(insurer),
            updated_at=self.stamp(at),
            blank_insurer=_DIRT_NAME <= roll < _DIRT_INSURER,
        )
        self._move(record)
        record.render()
        self.records.append(record)

    def _impossible_birth_date(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.4:
            return (self.start + timedelta(days=30 + int(rng.random() * 3000))).isoformat()
        if kind < 0.7:
            return date(1850 + int(rng.random() * 50), 1 + int(rng.random() * 12), 1).isoformat()
        return f"{1930 + int(rng.random() * 90)}-02-30"

    def _plan(self, insurer: str) -> str:
        if not insurer:
            return ""  # self-pay
        return self.rng.choices(PLANS, _PLAN_WEIGHTS)[0]

    def _move(self, record: _Record) -> None:
        rng = self.rng
        address = f"{1 + int(rng.random() * 180)} {rng.choice(_STREETS)}"
        if rng.random() < 0.12:
            address = f"Flat {1 + int(rng.random() * 30)}, {address}"
        record.address = address
        record.postal = f"{10000 + int(rng.random() * 89999)}"

    def change_insurer(self, record: _Record, insurer: str, at: int) -> None:
        record.insurer = insurer
        record.plan = self._plan(insurer)
        record.updated_at = self.stamp(at)
        record.render()

    def daily_changes(self, day: int) -> None:
        """Moves and plan changes of one day."""
        rng = self.rng
        count = len(self.records)
        for rate, move in ((DAILY_MOVE_RATE, True), (DAILY_PLAN_CHANGE_RATE, False)):
            for _ in range(round(count * rate * rng.uniform(0.5, 1.5))):
                record = self.records[int(rng.random() * count)]
                if move:
                    self._move(record)
                elif record.insurer:
                    record.plan = rng.choice([plan for plan in PLANS if plan != record.plan])
                else:
                    continue
                during_office_hours = 8 * 3600 + int(rng.random() * 10 * 3600)
                record.updated_at = self.stamp(day * DAY + during_office_hours)
                record.render()


def generate_patients(
    landing_dir: Path,
    *,
    seed: int,
    end_date: date,
    days: int,
    scale: float,
    file_defects: bool = True,
) -> list[Path]:
    """Write `days` daily patient snapshots ending at `end_date` under `landing_dir/patients`.

    Returns the files written, in day order, the re-sent copy last. `seed`,
    `end_date`, `days` and `scale` give the patients of the admissions generator
    called with the same seed, end date and days and
    ``admissions_per_day=reference.admissions_per_day(scale)`` (with its default
    file defects). `file_defects=False` leaves out this generator's file defects.
    """
    folder = landing_dir / "patients"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"patients:{seed}")  # noqa: S311 - reproducible on purpose
    start = end_date - timedelta(days=days - 1)
    registry = _Registry(rng, start)

    bom_day = crlf_day = newline_day = truncated_day = resent_day = -1
    if file_defects:
        order = rng.sample(range(days), days)
        bom_day, crlf_day, newline_day, truncated_day, resent_day = (
            order[i % days] for i in range(5)
        )
        if days == 1:
            resent_day = -1

    written: list[Path] = []
    for simulated in hospital_days(seed=seed, end_date=end_date, days=days, scale=scale):
        day = simulated.day
        first_admission: dict[int, int] = {}
        for admission in simulated.admissions:
            first_admission.setdefault(admission.patient, admission.admitted)
        for index in range(len(registry.records), simulated.registered):
            if index >= simulated.registered_before and index in first_admission:
                at = first_admission[index] - int(rng.random() * 1800)  # registered on arrival
            else:
                at = -int((1 + rng.random() * 3650) * DAY)  # registered before the window
            registry.register(index, simulated.insurer(index), at)
        for index, at in first_admission.items():
            record = registry.records[index]
            if record.insurer != simulated.insurer(index):
                registry.change_insurer(record, simulated.insurer(index), at)
        registry.daily_changes(day)

        lines = [record.line for record in registry.records]
        if day == newline_day:
            lines[len(lines) // 2] = _with_quoted_newline(registry.records[len(lines) // 2])
        duplicates = [
            lines[int(rng.random() * len(lines))]
            for _ in range(round(len(lines) * DUPLICATE_ROW_RATE * rng.uniform(0.5, 1.5)))
        ]
        text = HEADER + "\n" + "".join(lines) + "".join(duplicates)
        if day == truncated_day:
            last = (duplicates or lines)[-1]
            text = text[: len(text) - len(last) + len(last) * 2 // 3]
        if day == crlf_day:
            text = text.replace("\n", "\r\n")
        data = text.encode("utf-8")
        if day == bom_day:
            data = b"\xef\xbb\xbf" + data
        path = folder / f"patients_{simulated.date.isoformat()}.csv"
        path.write_bytes(data)
        written.append(path)
    if resent_day >= 0:
        original = written[resent_day]
        copy = original.with_name(f"{original.stem}_resent.csv")
        copy.write_bytes(original.read_bytes())
        written.append(copy)
    return written


def _with_quoted_newline(record: _Record) -> str:
    """The record's line with its address keyed in on two lines (quoted, per RFC 4180)."""
    address = record.address
    record.address = address.replace(", ", "\n", 1) if ", " in address else f"{address}\nBuilding B"
    record.render()
    line = record.line
    record.address = address
    record.render()
    return line
