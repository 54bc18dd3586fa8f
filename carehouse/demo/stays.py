"""The admissions simulation: a population of patients moving through the departments.

What it models:

- fresh admissions spread over the departments (`carehouse.demo.departments`)
  by their shares, each with its department's mix of admission types and
  length of stay; emergencies arrive by hour of day, elective ones in the morning;
- patients: a population of about a tenth of the admissions when the horizon
  allows it. A patient is never in two beds at once, and is not picked for an
  unrelated admission within 30 days of a discharge, so that every 30-day
  readmission in the data is one the simulation meant (short horizons therefore
  need more patients than a tenth; the population grows as needed);
- real readmission patterns: unplanned returns 1-30 days after a discharge
  alive (more often from geriatrics, respiratory, cardiology), a few just
  outside the window (31-40 days), planned oncology cycles (elective, not
  readmissions), internal ward transfers (back-to-back stays);
- insurer changes over time and self-pay patients (empty insurer).

Every draw comes from the one random stream the caller passes in, in a fixed
order: `generate_admissions` shares it with the file writer, and
`reference.hospital_days` replays the same calls to describe the same stays
without writing files. Moving a draw changes every data set.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from heapq import heappop, heappush
from itertools import accumulate
from math import exp, log

from carehouse.demo.departments import DEPARTMENTS, Department

INSURERS = ("INS001", "INS002", "INS003", "INS004", "INS005", "INS006", "INS007", "INS008")
_INSURER_WEIGHTS = (24, 18, 14, 12, 10, 9, 7, 6)
SELF_PAY_SHARE = 0.03
INSURER_CHANGE_RATE = 0.02  # per admission: the patient changed plan since the last stay

# The simulation's clock: seconds since the first day's midnight (local time).
DAY = 86_400
HOUR = 3_600
READMISSION_WINDOW_DAYS = 30

_BY_NAME = {department.name: department for department in DEPARTMENTS}
_DEPARTMENT_CUM = tuple(accumulate(department.share for department in DEPARTMENTS))
_INSURER_CUM = tuple(accumulate(_INSURER_WEIGHTS))
_TYPES = ("emergency", "urgent", "elective")
_TYPE_CUM = {department.name: tuple(accumulate(department.types)) for department in DEPARTMENTS}
# Where unplanned readmissions land when not back in the same department.
_READMIT_DEPARTMENTS = ("EMERGENCY", "GENERAL_MEDICINE", "GERIATRICS", "RESPIRATORY", "CARDIOLOGY")
# Emergency arrivals by hour of day: a day peak, a quiet night.
_EMERGENCY_HOUR_CUM = tuple(
    accumulate((2, 2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 4, 4, 3, 3))
)


@dataclass(slots=True)
class Patient:
    """A patient of the population: the insurer now, and when they may be admitted again."""

    insurer: str  # '' for self-pay
    # Not eligible for an unrelated admission before this instant (seconds):
    # in hospital, or within 30 days of a discharge.
    busy_until: int = -(10**12)


@dataclass(slots=True)
class Stay:
    """One admission as simulated, before it is written (and dirtied) as a CSV row."""

    patient: int  # index into Hospital.patients
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


class Hospital:
    """The simulation state; one instance writes one data set.

    Args:
        rng: the one random stream of the data set (see the module's docstring).
        days: how many days are simulated; stays planned after them are dropped.
        population: patients registered before the first day.
    """

    def __init__(self, rng: random.Random, *, days: int, population: int) -> None:
        self.rng = rng
        self.days = days
        self.end = days * DAY
        self.patients: list[Patient] = [self._new_patient() for _ in range(population)]
        self.planned: dict[int, list[_Planned]] = {}
        # Patients free for an unrelated admission, and a heap of (busy_until, patient)
        # of the others; an entry is stale when the patient's busy_until moved since.
        self.free: list[int] = list(range(population))
        self.resting: list[tuple[int, int]] = []

    def _new_patient(self) -> Patient:
        rng = self.rng
        if rng.random() < SELF_PAY_SHARE:
            return Patient(insurer="")
        return Patient(insurer=INSURERS[bisect(_INSURER_CUM, rng.random() * _INSURER_CUM[-1])])

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

    def day(self, day: int, fresh: int) -> list[Stay]:
        """All stays starting on `day`: planned ones, then `fresh` unrelated ones.

        Args:
            day: the day, 0 for the first; days must be simulated in order.
            fresh: how many unrelated admissions to add to the planned ones.

        Returns:
            The day's stays by admission time.
        """
        rng = self.rng
        queue = self.planned.pop(day, [])
        for _ in range(fresh):
            department = DEPARTMENTS[bisect(_DEPARTMENT_CUM, rng.random() * _DEPARTMENT_CUM[-1])]
            cumulative = _TYPE_CUM[department.name]
            kind = _TYPES[bisect(cumulative, rng.random() * cumulative[-1])]
            queue.append(_Planned(-1, department, kind, None))
        stays: list[Stay] = []
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

    def _stay(self, day: int, planned: _Planned, queue: list[_Planned]) -> Stay:
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
        stay = Stay(
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

    def _follow_up(self, stay: Stay, queue: list[_Planned], day: int) -> None:
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
