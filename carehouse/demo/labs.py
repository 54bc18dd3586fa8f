"""A simulated hospital's lab results: FHIR R4 Observations, one NDJSON file a day, one Bundle.

Deterministic for a seed. Results belong to the admissions of the admissions
generator for the same seed, end date, days and scale
(`carehouse.demo.reference.hospital_days`): each is taken during a stay, with
`subject` the stay's patient and `encounter` its admission id. About
`reference.observations_per_day(scale)` a day, as a real export mixes them:

- laboratory panels (category `laboratory`): LOINC codes with UCUM units and
  reference ranges, values mostly in range, H/L (HH/LL past critical limits)
  consistent with the value;
- vital signs (`vital-signs`), blood pressure as a `component` panel, pain
  scores (`survey`, valueInteger), blood cultures and blood groups
  (valueCodeableConcept), lab comments (valueString), cancelled orders (no
  value, a dataAbsentReason);
- dirt: unknown LOINC codes and local codes without LOINC, results in another
  unit than the test's (glucose in mmol/L, ...), missing referenceRange, and
  one malformed (truncated) line.

Each day's file holds the Observations issued that day, by effective time;
one day's point-of-care glucose results come as a FHIR Bundle instead
(`labs_bundle_<date>.json`), with an OperationOutcome entry as servers add.
Times are written in UTC (`Z`), the admissions' local times taken as UTC.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from carehouse.demo.reference import (
    BLOOD_PRESSURE,
    DIASTOLIC,
    LAB_PANELS,
    LAB_TESTS_BY_LOINC,
    LOCAL_CODE_SYSTEM,
    SYSTOLIC,
    UNIT_MISMATCHES,
    UNKNOWN_LOINC_CODES,
    VITAL_SIGNS,
    Admission,
    LabTest,
    hospital_days,
    observations_per_day,
    patient_id,
)
from carehouse.demo.stays import DAY, HOUR

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SNOMED = "http://snomed.info/sct"

# Kinds of orders, by weight.
_KINDS = (("lab", 80), ("vitals", 9), ("survey", 3), ("coded", 3), ("comment", 2), ("cancelled", 1))
# Row-level dirt of lab results, cumulative probability thresholds.
_DIRT_UNKNOWN_CODE = 0.005
_DIRT_LOCAL_CODE = 0.008
_DIRT_UNIT = 0.018
_DIRT_NO_RANGE = 0.045
# Share of results outside the reference range.
_ABNORMAL = 0.18

_CATEGORY = {
    name: json.dumps(
        [{"coding": [{"system": CATEGORY_SYSTEM, "code": name, "display": display}]}],
        separators=(",", ":"),
    )
    for name, display in (
        ("laboratory", "Laboratory"),
        ("vital-signs", "Vital Signs"),
        ("survey", "Survey"),
    )
}
_BLOOD_CULTURE = ("600-7", "Bacteria identified in Blood by Culture")
_CULTURE_RESULTS = (
    ("264868006", "No growth", 85),
    ("3092008", "Staphylococcus aureus", 6),
    ("112283007", "Escherichia coli", 6),
    ("9861002", "Streptococcus pneumoniae", 3),
)
_BLOOD_GROUP = ("883-9", "ABO group [Type] in Blood")
_BLOOD_GROUPS = (("112144000", "Blood group A", 42), ("112149005", "Blood group B", 10),
                 ("58460004", "Blood group O", 44), ("165743006", "Blood group AB", 4))  # fmt: skip
_PAIN = ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")
_COMMENT = ("48767-8", "Annotation comment [Interpretation] Narrative")
_COMMENTS = ("Sample haemolysed, please repeat.", "Result confirmed by repeat analysis.",
             "Lipaemic sample: interpret with caution.", "Called to ward, read back.")  # fmt: skip


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _code(system: str, code: str, display: str, text: str | None = None) -> str:
    """An Observation.code (a CodeableConcept of one coding), rendered once."""
    key = (system, code, display, text)
    rendered = _CODES.get(key)
    if rendered is None:
        concept: dict[str, object] = {
            "coding": [{"system": system, "code": code, "display": display}]
        }
        if text is not None:
            concept["text"] = text
        rendered = _CODES[key] = _json(concept)
    return rendered


_CODES: dict[tuple[str, str, str, str | None], str] = {}


@dataclass(frozen=True, slots=True)
class _Context:
    """Who and when an observation is about, rendered once per order."""

    patient: str
    encounter: str
    effective: str
    issued: str


class _Lab:
    """Renders Observations as NDJSON lines, with their own random stream."""

    def __init__(self, rng: random.Random, start: date) -> None:
        self.rng = rng
        self.midnight = datetime.combine(start, datetime.min.time())
        self.next_id = 1
        self.panels = [panel for _, _, panel in LAB_PANELS]
        self.panel_weights = [weight for _, weight, _ in LAB_PANELS]
        self.kinds = [kind for kind, _ in _KINDS]
        self.kind_weights = [weight for _, weight in _KINDS]

    def stamp(self, seconds: int) -> str:
        return (self.midnight + timedelta(seconds=seconds)).isoformat() + "Z"

    def _head(self, category: str, status: str, code: str, context: _Context) -> str:
        identifier = f"obs-{self.next_id:010d}"
        self.next_id += 1
        return (
            f'{{"resourceType":"Observation","id":"{identifier}",'
            f'"meta":{{"lastUpdated":"{context.issued}"}},"status":"{status}",'
            f'"category":{_CATEGORY[category]},"code":{code},'
            f'"subject":{{"reference":"Patient/{context.patient}"}},'
            f'"encounter":{{"reference":"Encounter/{context.encounter}"}},'
            f'"effectiveDateTime":"{context.effective}","issued":"{context.issued}"'
        )

    def order(self, admission: Admission, at: int) -> list[str]:
        """The Observations of one order taken at `at` during an admission."""
        rng = self.rng
        lag = 1800 + int(rng.random() * 3 * HOUR)
        context = _Context(
            patient=patient_id(admission.patient),
            encounter=admission.admission_id,
            effective=self.stamp(at),
            issued=self.stamp(at + lag),
        )
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        if kind == "lab":
            panel = rng.choices(self.panels, self.panel_weights)[0]
            return [self.lab_result(LAB_TESTS_BY_LOINC[code], context) for code in panel]
        if kind == "vitals":
            return [*(self.vital_sign(sign, context) for sign in VITAL_SIGNS),
                    self.blood_pressure(context)]  # fmt: skip
        if kind == "survey":
            code = _code(LOINC, *_PAIN)
            score = min(10, int(rng.expovariate(1 / 2.5)))
            return [self._head("survey", "final", code, context) + f',"valueInteger":{score}}}']
        if kind == "coded":
            return [self.coded_result(context)]
        if kind == "comment":
            code = _code(LOINC, *_COMMENT)
            text = _json(rng.choice(_COMMENTS))
            return [self._head("laboratory", "final", code, context) + f',"valueString":{text}}}']
        test = LAB_TESTS_BY_LOINC[rng.choice(("2345-7", "2160-0", "718-7"))]
        code = _code(LOINC, test.loinc, test.display)
        absent = _json({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                    "data-absent-reason", "code": "not-performed"}]})  # fmt: skip
        return [self._head("laboratory", "cancelled", code, context)
                + f',"dataAbsentReason":{absent}}}']  # fmt: skip

    def lab_result(self, test: LabTest, context: _Context) -> str:
        rng = self.rng
        value = self._value(test.mean, test.sd, test.low, test.high)
        unit, low, high, decimals = test.unit, test.low, test.high, test.decimals
        loinc, display, system = test.loinc, test.display, LOINC
        with_range = True
        roll = rng.random()
        if roll < _DIRT_UNKNOWN_CODE:
            loinc = rng.choice(UNKNOWN_LOINC_CODES)
        elif roll < _DIRT_LOCAL_CODE:
            system, loinc = LOCAL_CODE_SYSTEM, f"L-{test.loinc.replace('-', '')}"
        elif roll < _DIRT_UNIT and test.loinc in UNIT_MISMATCHES:
            unit, factor, low, high, decimals = UNIT_MISMATCHES[test.loinc]
            value *= factor
        elif roll < _DIRT_NO_RANGE:
            with_range = False
        value = round(value, decimals)
        interpretation = self._interpretation(test, value, low, high, unit != test.unit)
        code = _code(system, loinc, display, display.split(" [")[0])
        text = self._head("laboratory", self._status(), code, context)
        text += f',"valueQuantity":{_quantity(value, unit, decimals)}'
        text += (
            f',"interpretation":[{{"coding":[{{"system":"{INTERPRETATION_SYSTEM}",'
            f'"code":"{interpretation}"}}]}}]'
        )
        if with_range:
            text += (
                f',"referenceRange":[{{"low":{_quantity(low, unit, decimals)},'
                f'"high":{_quantity(high, unit, decimals)}}}]'
            )
        return text + "}"

    def _status(self) -> str:
        roll = self.rng.random()
        return "final" if roll < 0.95 else "amended" if roll < 0.98 else "preliminary"

    def _value(self, mean: float, sd: float, low: float, high: float) -> float:
        rng = self.rng
        if rng.random() >= _ABNORMAL:
            value = rng.gauss(mean, sd)
            return min(max(value, low), high)
        # Out of range: high results are the commoner (infection, kidneys, diabetes).
        if rng.random() < 0.7 or low <= 0:
            return high + abs(rng.gauss(0, (high - low) * 0.3)) + (high - low) * 0.01
        return max(low - abs(rng.gauss(0, (high - low) * 0.2)) - (high - low) * 0.01, 0)

    @staticmethod
    def _interpretation(test: LabTest, value: float, low: float, high: float, other: bool) -> str:
        if not other and test.critical_high is not None and value >= test.critical_high:
            return "HH"
        if not other and test.critical_low is not None and value <= test.critical_low:
            return "LL"
        if value > high:
            return "H"
        if value < low:
            return "L"
        return "N"

    def vital_sign(self, sign: tuple[str, str, str, float, float, int], context: _Context) -> str:
        loinc, display, unit, mean, sd, decimals = sign
        value = round(self.rng.gauss(mean, sd), decimals)
        if loinc == "59408-5":
            value = min(value, 100)
        code = _code(LOINC, loinc, display)
        return (
            self._head("vital-signs", "final", code, context)
            + f',"valueQuantity":{_quantity(value, unit, decimals)}}}'
        )

    def blood_pressure(self, context: _Context) -> str:
        rng = self.rng
        code = _code(LOINC, *BLOOD_PRESSURE)
        components = []
        for loinc, display, mean, sd in (SYSTOLIC, DIASTOLIC):
            value = round(rng.gauss(mean, sd))
            part_code = _code(LOINC, loinc, display)
            components.append(
                f'{{"code":{part_code},"valueQuantity":{_quantity(value, "mm[Hg]", 0)}}}'
            )
        return (
            self._head("vital-signs", "final", code, context)
            + f',"component":[{",".join(components)}]}}'
        )

    def coded_result(self, context: _Context) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            (loinc, display), results = _BLOOD_CULTURE, _CULTURE_RESULTS
        else:
            (loinc, display), results = _BLOOD_GROUP, _BLOOD_GROUPS
        snomed, text, _ = rng.choices(results, [weight for _, _, weight in results])[0]
        code = _code(LOINC, loinc, display)
        value = _code(SNOMED, snomed, text, text)
        return (
            self._head("laboratory", self._status(), code, context)
            + f',"valueCodeableConcept":{value}}}'
        )


def _quantity(value: float, unit: str, decimals: int) -> str:
    number = f"{value:.{decimals}f}"
    return f'{{"value":{number},"unit":"{unit}","system":"{UCUM}","code":"{unit}"}}'


def generate_labs(
    landing_dir: Path,
    *,
    seed: int,
    end_date: date,
    days: int,
    scale: float,
    file_defects: bool = True,
) -> list[Path]:
    """Write `days` daily lab NDJSON files (and one Bundle) ending at `end_date`.

    Files go under `landing_dir/labs`, returned in day order, the Bundle last.
    `seed`, `end_date`, `days` and `scale` give the admissions of the admissions
    generator called with the same seed, end date and days and
    ``admissions_per_day=reference.admissions_per_day(scale)``.
    `file_defects=False` leaves out the malformed line and the Bundle.
    """
    folder = landing_dir / "labs"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"labs:{seed}")  # noqa: S311 - reproducible on purpose
    start = end_date - timedelta(days=days - 1)
    lab = _Lab(rng, start)
    per_day = observations_per_day(scale)
    malformed_day = bundle_day = -1
    if file_defects:
        malformed_day, bundle_day = int(rng.random() * days), int(rng.random() * days)
    active: list[Admission] = []
    written: list[Path] = []
    bundle: list[str] = []
    bundle_path: Path | None = None
    for simulated in hospital_days(seed=seed, end_date=end_date, days=days, scale=scale):
        day = simulated.day
        day_start, day_end = day * DAY, (day + 1) * DAY
        active = [stay for stay in active if stay.discharged > day_start]
        active.extend(simulated.admissions)
        results: list[tuple[int, str]] = []
        target = round(per_day * rng.uniform(0.9, 1.1))
        for _ in range(4 * target):  # bounded: a day whose stays all last no time at all
            if len(results) >= target or not active:
                break
            stay = active[int(rng.random() * len(active))]
            begin, end = max(stay.admitted, day_start), min(stay.discharged, day_end)
            if end > begin:
                at = begin + int(rng.random() * (end - begin))
                results.extend((at, line) for line in lab.order(stay, at))
        results.sort(key=lambda result: result[0])
        lines = [line for _, line in results]
        if day == bundle_day:
            # Point-of-care glucose meters report through the FHIR server: a Bundle.
            point_of_care = [i for i, line in enumerate(lines) if '"code":"2345-7"' in line]
            chosen = set(point_of_care[: max(1, len(point_of_care) // 5)])
            bundle = [line for i, line in enumerate(lines) if i in chosen]
            lines = [line for i, line in enumerate(lines) if i not in chosen]
        if day == malformed_day and lines:
            middle = len(lines) // 2
            lines[middle] = lines[middle][: len(lines[middle]) * 2 // 3]  # the export broke off
        path = folder / f"labs_{simulated.date.isoformat()}.ndjson"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        written.append(path)
        if day == bundle_day:
            bundle_path = folder / f"labs_bundle_{simulated.date.isoformat()}.json"
            _write_bundle(bundle_path, bundle, simulated.date)
    return written if bundle_path is None else [*written, bundle_path]


def _write_bundle(path: Path, resources: list[str], day: date) -> None:
    """A `collection` Bundle of the resources, pretty enough to read, with an OperationOutcome."""
    issue = {"severity": "information", "code": "informational",
             "diagnostics": "point-of-care results, partial upload"}  # fmt: skip
    outcome = _json(
        {"resourceType": "OperationOutcome", "id": f"outcome-{day.isoformat()}", "issue": [issue]}
    )
    entries = [
        f'  {{"fullUrl": "urn:uuid:poc-{day.isoformat()}-{n:06d}",\n   "resource": {resource}}}'
        for n, resource in enumerate([*resources, outcome])
    ]
    text = (
        '{\n "resourceType": "Bundle",\n "type": "collection",\n'
        f' "timestamp": "{day.isoformat()}T23:59:59Z",\n "entry": [\n'
        + ",\n".join(entries)
        + "\n ]\n}\n"
    )
    path.write_text(text, encoding="utf-8")
