"""Simulated bedside monitors: the vital-sign messages they send, dirty as real feeds.

`generate_vitals` is deterministic for a seed (``random.Random``, no wall clock,
no hash order): the same arguments yield the same messages in the same order.
What it models:

- monitored stays: a patient on a monitor (device) for hours to days, an
  observation set every 15-60 minutes (each stay has its own cadence, jittered);
  a patient is never on two monitors at once, nor a monitor on two patients;
- physiology: a per-patient baseline, and deterioration episodes (about a fifth
  of stays) that ramp over hours and drive NEWS2 up: respiration rate up, SpO2
  down, systolic pressure down, pulse up, fever, Voice/Pain/Unresponsive or new
  confusion at the worst, supplemental oxygen for most; most episodes recover;
- SpO2 scale 2 patients (hypercapnic respiratory failure: target 88-92%);
- two monitor vendors: `+00:00` offsets, or `Z` with milliseconds; a few devices
  on newer firmware send extra fields (`firmware`, `pain_score`);
- about 5% dirt: duplicates (a producer retry sends the same message twice,
  marked `retry`),
  late messages (minutes to hours), out-of-order ones (after the device's next
  observation), implausible readings (sensor artefacts: heart rate 0 or 900),
  and poison messages: not JSON, tombstones (null value), wrong types
  (`"heart_rate": "fast"`), not UTF-8 (a UTF-16 monitor), missing fields,
  invalid values (`spo2_scale` 3, consciousness `X`), bad timestamps, arrays.

Messages come in send order. Nothing here talks to Kafka: `carehouse.demo.vitals`
produces these messages (`produce_vitals`) or streams live ones from the same
`Monitors` (`stream_vitals`), so the simulation can be tested without a broker.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

MESSAGES_PER_YEAR = 1_000_000  # at scale 1.0
MINUTE = 60
HOUR = 3_600
DAY = 86_400

# Dirt, as shares of observations (cumulative thresholds of one roll), about 5% in all.
_POISON = 0.012
_IMPLAUSIBLE = _POISON + 0.003
_LATE = _IMPLAUSIBLE + 0.010
_OUT_OF_ORDER = _LATE + 0.005
DUPLICATE_SHARE = 0.020  # independent of the roll: any message may be sent twice

SCALE2_SHARE = 0.06
EPISODE_SHARE = 0.20
NEW_FIRMWARE_EVERY = 40  # every 40th device sends extra fields
WARM_UP_DAYS = 10  # stays begin before the window, so it opens with patients on monitors
MAX_STAY_DAYS = 21
_STAY_MEDIAN_HOURS = 30.0
_STAY_SIGMA = 0.9
_INTERVAL_MINUTES = (15.0, 60.0)
# Observations a stay yields on average: mean length times mean rate (1/interval).
_MEAN_STAY_SECONDS = _STAY_MEDIAN_HOURS * HOUR * math.exp(_STAY_SIGMA**2 / 2)
_MEAN_RATE = math.log(_INTERVAL_MINUTES[1] / _INTERVAL_MINUTES[0]) / (
    (_INTERVAL_MINUTES[1] - _INTERVAL_MINUTES[0]) * MINUTE
)

_POISON_KINDS = (
    "not_json",
    "null_value",
    "wrong_type:heart_rate",
    "wrong_type:spo2",
    "wrong_type:on_oxygen",
    "not_utf8",
    "missing_field:temperature_c",
    "invalid_value:spo2_scale",
    "invalid_value:consciousness",
    "bad_timestamp",
    "not_an_object",
)


class VitalMessage(NamedTuple):
    """One message as a monitor sends it; `kind` says what the simulation meant it to be."""

    key: bytes
    value: bytes | None
    sent_at: float  # seconds since the epoch: when the monitor sent it
    kind: str  # valid, late, out_of_order, implausible, or poison:<the drain's reason>
    retry: bool = False  # a second copy of the message before it (a producer retry)


@dataclass(slots=True)
class _Stay:
    patient_id: str
    device: int
    start: float
    end: float
    interval: float  # seconds between observation sets, before jitter
    scale2: bool
    chronic_oxygen: bool
    heart_rate: float
    resp_rate: float
    systolic_bp: float
    temperature_c: float
    spo2: float
    # A deterioration episode: onset, time to peak, plateau, recovery (inf: none).
    onset: float = math.inf
    ramp: float = 1.0
    plateau: float = 0.0
    recovery: float = math.inf
    peak: float = 0.0
    febrile: bool = False

    def severity(self, at: float) -> float:
        """0 (baseline) to `peak`, following the episode's course."""
        if at < self.onset:
            return 0.0
        into = at - self.onset
        if into < self.ramp:
            return self.peak * into / self.ramp
        into -= self.ramp
        if into < self.plateau:
            return self.peak
        into -= self.plateau
        return max(0.0, self.peak * (1 - into / self.recovery))


class Monitors:
    """The simulation state shared by the historical generator and the live stream.

    Args:
        rng: the random stream every draw comes from, in a fixed order.
        patients: the patient ids to put on monitors.
    """

    def __init__(self, rng: random.Random, patients: list[str]) -> None:
        self.rng = rng
        self.patients = patients
        self.patient_busy: dict[str, float] = {}
        self.free_devices: list[int] = []
        self.devices = 0

    def device(self) -> int:
        """A free monitor, the lowest numbered one; a new one when all are in use."""
        if self.free_devices:
            return heapq.heappop(self.free_devices)  # the lowest free id: stable numbering
        self.devices += 1
        return self.devices

    def patient(self, start: float, end: float) -> str:
        """A random patient not on a monitor at `start`, kept busy until `end`."""
        rng = self.rng
        for _ in range(20):
            candidate = self.patients[int(rng.random() * len(self.patients))]
            if self.patient_busy.get(candidate, -math.inf) < start:
                break
        # After 20 busy picks, a busy patient: only when the population is too small.
        self.patient_busy[candidate] = end
        return candidate

    def stay(self, start: float, length: float | None = None) -> _Stay:
        """A new monitored stay: its patient, device, cadence, baseline and any episode.

        Args:
            start: when the patient goes on the monitor (epoch seconds, or the
                live stream's simulated clock).
            length: how long, in seconds (default: drawn, log-normal, at most
                MAX_STAY_DAYS).
        """
        rng = self.rng
        if length is None:
            hours = math.exp(rng.gauss(math.log(_STAY_MEDIAN_HOURS), _STAY_SIGMA))
            length = min(hours * HOUR, MAX_STAY_DAYS * DAY)
        end = start + length
        scale2 = rng.random() < SCALE2_SHARE
        stay = _Stay(
            patient_id=self.patient(start, end),
            device=self.device(),
            start=start,
            end=end,
            interval=rng.uniform(*_INTERVAL_MINUTES) * MINUTE,
            scale2=scale2,
            chronic_oxygen=scale2 and rng.random() < 0.5,
            heart_rate=rng.gauss(78, 9),
            resp_rate=rng.gauss(15.5, 1.5),
            systolic_bp=rng.gauss(128, 14),
            temperature_c=rng.gauss(36.8, 0.25),
            spo2=rng.gauss(90.5, 1.0) if scale2 else min(99.5, rng.gauss(97.2, 1.0)),
        )
        if rng.random() < EPISODE_SHARE:
            stay.onset = start + rng.uniform(0.05, 0.8) * length
            stay.ramp = rng.uniform(2, 10) * HOUR
            stay.plateau = rng.uniform(1, 6) * HOUR
            stay.recovery = rng.uniform(3, 24) * HOUR if rng.random() < 0.75 else math.inf
            stay.peak = rng.uniform(0.4, 1.0)
            stay.febrile = rng.random() < 0.6
        return stay

    def release(self, stay: _Stay) -> None:
        """Free the stay's monitor for the next stay (the patient is freed by time)."""
        heapq.heappush(self.free_devices, stay.device)

    def observe(self, stay: _Stay, at: float, clock: float) -> dict[str, object]:
        """The observation set at `at` in the stay's course, stamped `clock` (epoch seconds)."""
        rng = self.rng
        s = stay.severity(at)
        on_oxygen = stay.chronic_oxygen or (s > 0.45 and rng.random() < 0.8)
        spo2 = stay.spo2 - 10 * s + rng.gauss(0, 0.8) + (2.5 if on_oxygen and s > 0 else 0)
        systolic = stay.systolic_bp - 42 * s + rng.gauss(0, 6)
        consciousness = "A"
        if s > 0.7:
            roll = rng.random()
            consciousness = (
                "U" if roll < 0.03 else "P" if roll < 0.1 else "V" if roll < 0.4 else "C"
            )
            if roll >= 0.5:
                consciousness = "A"
        elif rng.random() < 0.003:
            consciousness = "C"  # an elderly patient's new confusion, without an episode
        fever = 2.4 * s if stay.febrile else 0.0
        return {
            "device_id": _device_id(stay.device),
            "patient_id": stay.patient_id,
            "observed_at": _timestamp(clock, stay.device),
            "heart_rate": round(stay.heart_rate + 50 * s + rng.gauss(0, 4)),
            "resp_rate": max(4, round(stay.resp_rate + 14 * s + rng.gauss(0, 1.2))),
            "systolic_bp": round(systolic),
            "diastolic_bp": round(systolic * rng.uniform(0.55, 0.68)),
            "spo2": min(100, round(spo2)),
            "spo2_scale": 2 if stay.scale2 else 1,
            "on_oxygen": on_oxygen,
            "consciousness": consciousness,
            "temperature_c": round(stay.temperature_c + fever + rng.gauss(0, 0.15), 1),
        }

    def message(
        self, stay: _Stay, at: float, sent_at: float, clock: float | None = None
    ) -> list[VitalMessage]:
        """The observation at `at` as sent: usually one message, sometimes dirty or twice.

        `clock` is the time the monitor stamps (default `at`): the live stream runs
        patients' courses faster than the wall clock it stamps.
        """
        rng = self.rng
        doc = self.observe(stay, at, at if clock is None else clock)
        if stay.device % NEW_FIRMWARE_EVERY == 0:
            doc["firmware"] = "4.2.1"
            doc["pain_score"] = rng.randrange(0, 4)
        key = _device_id(stay.device).encode()
        roll = rng.random()
        kind = "valid"
        if roll < _POISON:
            reason = _POISON_KINDS[int(rng.random() * len(_POISON_KINDS))]
            value = _poison(rng, doc, reason)
            kind = f"poison:{reason}"
        else:
            if roll < _IMPLAUSIBLE:
                field, reading = rng.choice(
                    (("heart_rate", 0), ("heart_rate", 900), ("spo2", 0), ("temperature_c", 3.7))
                )
                doc[field] = reading
                kind = "implausible"
            elif roll < _LATE:
                sent_at += rng.uniform(2 * MINUTE, 6 * HOUR)
                kind = "late"
            elif roll < _OUT_OF_ORDER:
                sent_at += stay.interval * rng.uniform(1.1, 2.5)  # after the next observation
                kind = "out_of_order"
            value = _json(doc)
        first = VitalMessage(key, value, sent_at, kind)
        if rng.random() < DUPLICATE_SHARE:
            again = sent_at + rng.uniform(0.001, 3.0)
            return [first, VitalMessage(key, value, again, kind, retry=True)]
        return [first]


def _device_id(device: int) -> str:
    return f"MON-{device:05d}"


def _timestamp(at: float, device: int) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    if device % 3 == 0:
        # The second vendor: UTC as `Z`, with milliseconds.
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
    return moment.isoformat(timespec="seconds")


def _json(doc: dict[str, object]) -> bytes:
    return (
        "{" + ",".join(f'"{name}":{_json_value(item)}' for name, item in doc.items()) + "}"
    ).encode()


def _json_value(item: object) -> str:
    # Ids, timestamps and codes have nothing to escape; floats print as JSON numbers.
    if item is None:
        return "null"
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str):
        return f'"{item}"'
    return repr(item)


def _poison(rng: random.Random, doc: dict[str, object], reason: str) -> bytes | None:
    """A message that cannot be loaded, for the reason the drain must give."""
    if reason == "null_value":
        return None  # a tombstone
    if reason == "not_json":
        text = _json(doc)
        return text[: len(text) * 2 // 3] if rng.random() < 0.5 else b"HR=72;RR=16;SPO2=97"
    if reason == "not_utf8":
        return _json(doc).decode().encode("utf-16")  # a monitor speaking UTF-16, with a BOM
    if reason == "not_an_object":
        return ("[" + ",".join(_json_value(item) for item in doc.values()) + "]").encode()
    broken = dict(doc)
    if reason == "wrong_type:heart_rate":
        broken["heart_rate"] = rng.choice(("fast", None, "72"))
    elif reason == "wrong_type:spo2":
        broken["spo2"] = f"{doc['spo2']}%"
    elif reason == "wrong_type:on_oxygen":
        broken["on_oxygen"] = rng.choice(("yes", "N"))
    elif reason == "missing_field:temperature_c":
        del broken["temperature_c"]
    elif reason == "invalid_value:spo2_scale":
        broken["spo2_scale"] = 3
    elif reason == "invalid_value:consciousness":
        broken["consciousness"] = rng.choice(("X", "alert"))
    elif reason == "bad_timestamp":
        moment = datetime.fromisoformat(str(doc["observed_at"]).replace("Z", "+00:00"))
        broken["observed_at"] = rng.choice(
            (f"{moment:%d/%m/%Y %H:%M}", f"{moment:%Y-%m-%dT%H:%M:%S}")  # no offset: ambiguous
        )
    return _json(broken)


def default_patients(count: int) -> list[str]:
    """Patient ids as the admissions simulator writes them: P and 7 digits, from 1."""
    return [f"P{number:07d}" for number in range(1, count + 1)]


def generate_vitals(
    *,
    seed: int,
    end_date: date,
    days: int,
    scale: float,
    patients: list[str] | None = None,
) -> Iterator[VitalMessage]:
    """The messages of `days` days ending at `end_date` (UTC), in send order.

    `scale` 1.0 is about 1,000,000 messages over 365 days (a few hundred a
    day at small scales). `patients` are the ids to put on monitors (default:
    P0000001... as the admissions simulator numbers them).

    Raises:
        ValueError: `days` is below 1 or `scale` is not positive.
    """
    if days < 1 or scale <= 0:
        raise ValueError("days must be at least 1 and scale positive")
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets: reproducible on purpose
    first = datetime.combine(end_date - timedelta(days=days - 1), datetime.min.time(), UTC)
    start = first.timestamp()
    end = start + days * DAY
    observations = MESSAGES_PER_YEAR * scale * days / 365 / (1 + DUPLICATE_SHARE)
    arrivals_per_second = observations / (_MEAN_STAY_SECONDS * _MEAN_RATE * days * DAY)
    if patients is None:
        expected_stays = arrivals_per_second * (days + WARM_UP_DAYS) * DAY
        patients = default_patients(max(10, round(expected_stays / 2)))
    monitors = Monitors(rng, patients)

    due: list[tuple[float, int, _Stay]] = []  # next observation of each stay on a monitor
    outbox: list[tuple[float, int, VitalMessage]] = []  # messages by send time
    sequence = 0
    arrival = start - WARM_UP_DAYS * DAY + rng.expovariate(arrivals_per_second)
    while True:
        next_due = due[0][0] if due else math.inf
        if arrival < end and arrival <= next_due:
            stay = monitors.stay(arrival)
            sequence += 1
            heapq.heappush(due, (arrival + rng.uniform(0, stay.interval), sequence, stay))
            arrival += rng.expovariate(arrivals_per_second)
            continue
        if next_due >= end:
            break
        at, _, stay = heapq.heappop(due)
        if at >= stay.end:
            monitors.release(stay)
            continue
        if at >= start:
            for message in monitors.message(stay, at, at + rng.uniform(0.05, 0.9)):
                sequence += 1
                heapq.heappush(outbox, (message.sent_at, sequence, message))
        sequence += 1
        heapq.heappush(due, (at + stay.interval * rng.uniform(0.85, 1.15), sequence, stay))
        while outbox and outbox[0][0] <= at:
            yield heapq.heappop(outbox)[2]
    while outbox:
        yield heapq.heappop(outbox)[2]
