"""Lab Observations into raw_labs.observations: every shape loads, nothing lost, nothing twice."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from carehouse.core.settings import Settings
from carehouse.demo.labs import generate_labs
from carehouse.ingest.labs import load_labs
from carehouse.ingest.summary import LoadSummary
from dlt_sources._common.jsonlines import JsonDocument, JsonLinesFile, LineBlock, LongLine
from dlt_sources.files import FileChangedError, LandedFile, discover
from dlt_sources.labs import bundles
from dlt_sources.labs.arrow import parse_fast
from dlt_sources.labs.blocks import parse_exact
from dlt_sources.labs.settings import EXTRACTED_COLUMNS
from tests.support.warehouse import isolated_warehouse

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def observation(n: int, **fields: Any) -> dict[str, Any]:
    """A glucose result, with `fields` replaced or added (None removes one)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{n}",
        "status": "final",
        "category": [{"coding": [{"system": "cat", "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": f"Patient/P{n:07d}"},
        "encounter": {"reference": f"Encounter/A{n}"},
        "effectiveDateTime": "2025-03-01T08:15:00Z",
        "issued": "2025-03-01T09:00:00Z",
        "valueQuantity": {"value": 104, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        "interpretation": [{"coding": [{"system": "v3", "code": "H"}]}],
        "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}],
    }
    for key, value in fields.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def line(resource: object) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


# The extracted columns of observation(n) as loaded; a case overrides some.
def columns(n: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "observation_id": f"obs-{n}",
        "status": "final",
        "category_code": "laboratory",
        "loinc_code": "2345-7",
        "loinc_display": "Glucose",
        "patient_ref": f"Patient/P{n:07d}",
        "encounter_ref": f"Encounter/A{n}",
        "effective_at": "2025-03-01T08:15:00Z",
        "issued": "2025-03-01T09:00:00Z",
        "value_type": "quantity",
        "value_numeric": Decimal("104"),
        "value_unit": "mg/dL",
        "value_text": None,
        "reference_low": Decimal("70"),
        "reference_high": Decimal("99"),
        "interpretation_code": "H",
    }
    row.update(values)
    return row


NONE = {"value_numeric": None, "value_unit": None}  # no valueQuantity


@dataclass
class Case:
    """One line of the corpus: its text, and what it must become."""

    text: bytes
    loaded: dict[str, object] | None = None  # the extracted columns
    reason: str | None = None  # or the quarantine reason


SHAPES: list[Case] = [
    Case(line(observation(1)).encode(), columns(1)),
    Case(
        line(
            observation(
                2,
                valueQuantity=None,
                valueCodeableConcept={
                    "coding": [{"system": "snomed", "code": "260385009"}],
                    "text": "Negative",
                },
                interpretation=None,
                referenceRange=None,
            )
        ).encode(),
        columns(2, **NONE, value_type="codeable_concept", value_text="Negative",
                reference_low=None, reference_high=None, interpretation_code=None),
    ),
    Case(  # no text: the first code stands for the concept
        line(observation(3, valueQuantity=None, valueCodeableConcept={
            "coding": [{"system": "x", "display": "no code"}, {"system": "s", "code": "POS"}]
        })).encode(),
        columns(3, **NONE, value_type="codeable_concept", value_text="POS"),
    ),
    Case(
        line(observation(4, valueQuantity=None, valueString="Sample haemolysed")).encode(),
        columns(4, **NONE, value_type="string", value_text="Sample haemolysed"),
    ),
    Case(
        line(observation(5, valueQuantity=None, valueBoolean=False)).encode(),
        columns(5, **NONE, value_type="boolean", value_text="false"),
    ),
    Case(
        line(observation(6, valueQuantity=None, valueInteger=7)).encode(),
        columns(6, value_unit=None, value_type="integer", value_numeric=Decimal(7)),
    ),
    Case(  # blood pressure: a panel of components, no value of its own
        line(
            observation(
                7,
                code={"coding": [{"system": LOINC, "code": "85354-9", "display": "BP"}]},
                valueQuantity=None,
                component=[
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                     "valueQuantity": {"value": 120, "unit": "mm[Hg]"}},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                     "valueQuantity": {"value": 80, "unit": "mm[Hg]"}},
                ],
                interpretation=None,
                referenceRange=None,
            )
        ).encode(),
        columns(7, **NONE, value_type="component", loinc_code="85354-9", loinc_display="BP",
                reference_low=None, reference_high=None, interpretation_code=None),
    ),
    Case(  # cancelled: no value at all; effectivePeriod instead of a dateTime
        line(observation(8, status="cancelled", valueQuantity=None,
                         effectiveDateTime=None, effectivePeriod={"start": "2025-03-01T07:00:00Z"},
                         dataAbsentReason={"text": "not performed"})).encode(),
        columns(8, **NONE, value_type="none", status="cancelled",
                effective_at="2025-03-01T07:00:00Z"),
    ),
    Case(  # an unknown LOINC code, a unit as sent (glucose in mmol/L), a unit without code
        line(observation(9, code={"coding": [{"system": "local", "code": "GLU"},
                                             {"system": LOINC, "code": "99999-9"}]},
                         valueQuantity={"value": 5.83, "unit": "mmol/L"},
                         referenceRange=[{"low": {"value": 3.9}}])).encode(),
        columns(9, loinc_code="99999-9", loinc_display=None, value_numeric=Decimal("5.83"),
                value_unit="mmol/L", reference_low=Decimal("3.9"), reference_high=None),
    ),
    Case(  # only a local code: no LOINC; nulls are absent values; a new field
        line(observation(10, code={"coding": [{"system": "local", "code": "GLU"}]},
                         issued=None, encounter=None, vendorScore={"v": 1}, note=[])).encode(),
        columns(10, loinc_code=None, loinc_display=None, issued=None, encounter_ref=None),
    ),
    Case(  # unicode, escapes and whitespace are JSON: loaded; a valid surrogate pair too
        b'  {"resourceType": "Observation", "id": "obs-11",'
        b' "valueString": "r\\u00e9sultat \\ud83d\\ude00 \xc3\xa9 \\"q\\""}  ',
        {**{name: None for name in EXTRACTED_COLUMNS}, "observation_id": "obs-11",
         "value_type": "string", "value_text": 'résultat 😀 é "q"'},
    ),
]  # fmt: skip

DIRTY: list[Case] = [
    Case(line(observation(20, valueQuantity={"value": "12.5", "unit": "mg/dL"})).encode(),
         reason="wrong_type:valueQuantity.value"),
    Case(line(observation(21, subject="Patient/P1")).encode(), reason="wrong_type:subject"),
    Case(line(observation(22, id=22)).encode(), reason="wrong_type:id"),
    Case(line(observation(23, valueQuantity={"value": 1e40})).encode(),
         reason="out_of_range:valueQuantity.value"),
    Case(line(observation(24, id=None)).encode(), reason="missing_id"),
    Case(line(observation(25, id="")).encode(), reason="missing_id"),
    Case(line({"resourceType": "Patient", "id": "p1"}).encode(), reason="not_an_observation"),
    Case(line(observation(26, resourceType=None)).encode(), reason="not_an_observation"),
    Case(b"[1, 2]", reason="not_an_object"),
    Case(b'"Observation"', reason="not_an_object"),
    Case(b"this is not json", reason="invalid_json"),
    Case(line(observation(27)).encode() + line(observation(28)).encode(), reason="invalid_json"),
    Case(line(observation(29)).encode()[:-20], reason="invalid_json"),
    Case(line(observation(30, valueQuantity={"value": float("nan")})).encode(),
         reason="invalid_json"),
    Case(line(observation(31, valueString="caf\u00e9")).encode().replace(b"\xc3\xa9", b"\xe9"),
         reason="invalid_utf8"),
    Case(line(observation(32, valueString="a\x00b")).encode(), reason="nul_character"),
    Case(line(observation(33)).encode()[:-1] + b',"x":"\\ud800"}', reason="invalid_unicode"),
    Case(b'{"resourceType":"Observation","id":"obs-34","x":' + b"[" * 300 + b"]" * 300 + b"}",
         reason="nesting_too_deep"),
]  # fmt: skip


def ndjson(cases: list[Case], *, crlf: bool = False, bom: bool = False) -> bytes:
    ending = b"\r\n" if crlf else b"\n"
    return (b"\xef\xbb\xbf" if bom else b"") + b"".join(case.text + ending for case in cases)


@dataclass
class Corpus:
    settings: Settings
    folder: Path
    summary: LoadSummary
    lines: dict[tuple[str, int], Case]  # (file, line): case
    received: int


def write_corpus(folder: Path) -> tuple[dict[tuple[str, int], Case], int]:
    """The corpus files, and what each record must become; also the records received."""
    folder.mkdir(parents=True)
    files = {
        "01_shapes.ndjson": ndjson(SHAPES, crlf=True, bom=True),
        "02_dirty.ndjson": ndjson(DIRTY),
        # blank lines are not records; the last line is cut short without its newline
        "03_blank_and_truncated.ndjson": (
            b"\n"
            + line(observation(40)).encode()
            + b"\n   \n"
            + line(observation(41)).encode()[:30]
        ),
        "04_empty.ndjson": b"",
    }
    expected: dict[tuple[str, int], Case] = {}
    for name in ("01_shapes.ndjson", "02_dirty.ndjson"):
        cases = SHAPES if name.startswith("01") else DIRTY
        expected |= {(name, number): case for number, case in enumerate(cases, start=1)}
    expected[("03_blank_and_truncated.ndjson", 2)] = Case(b"", columns(40))
    expected[("03_blank_and_truncated.ndjson", 4)] = Case(b"", reason="invalid_json")
    # A Bundle: entries in order; its _source_line is the entry's position.
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:1", "resource": observation(50)},
            {"resource": {"resourceType": "OperationOutcome", "id": "oo"}},
            {"request": {"method": "GET"}},
            "not an entry",
            {"resource": observation(51, valueQuantity=None, valueString="ok")},
        ],
        "total": 5,
    }
    files["05_bundle.json"] = json.dumps(bundle, indent=2).encode()
    expected |= {
        ("05_bundle.json", 1): Case(b"", columns(50)),
        ("05_bundle.json", 2): Case(b"", reason="not_an_observation"),
        ("05_bundle.json", 3): Case(b"", reason="no_resource"),
        ("05_bundle.json", 4): Case(b"", reason="not_an_object"),
        ("05_bundle.json", 5): Case(b"", columns(51, **NONE, value_type="string",
                                                 value_text="ok")),
    }  # fmt: skip
    # A Bundle cut short in its third entry: the rest is one record, quarantined.
    cut = json.dumps({"resourceType": "Bundle", "entry": [
        {"resource": observation(60)}, {"resource": observation(61)}, {"resource": observation(62)}
    ]})  # fmt: skip
    files["06_bundle_cut.json"] = cut[: cut.index('"obs-62"')].encode()
    expected |= {
        ("06_bundle_cut.json", 1): Case(b"", columns(60)),
        ("06_bundle_cut.json", 2): Case(b"", columns(61)),
        ("06_bundle_cut.json", 3): Case(b"", reason="invalid_json"),
    }
    # One resource on its own, pretty-printed.
    files["07_single.json"] = json.dumps(observation(70), indent=1).encode()
    expected[("07_single.json", 1)] = Case(b"", columns(70))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return expected, len(expected)


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    with isolated_warehouse(settings, "labs") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def corpus(warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    landing = tmp_path_factory.mktemp("landing")
    lines, received = write_corpus(landing / "labs")
    loader_settings = warehouse.model_copy(update={"landing_dir": landing})
    summary = load_labs(loader_settings)
    return Corpus(loader_settings, landing / "labs", summary, lines, received)


@pytest.fixture()
def conn(warehouse: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.dsn("admin"), autocommit=True) as connection:
        yield connection


def test_every_record_is_loaded_or_quarantined(corpus: Corpus, conn: psycopg.Connection) -> None:
    summary = corpus.summary
    reasons = Counter(case.reason for case in corpus.lines.values() if case.reason)
    assert summary.received == corpus.received
    assert summary.received == summary.loaded + summary.quarantined_total
    assert summary.quarantined == dict(sorted(reasons.items()))
    loaded = conn.execute("select count(*) from raw_labs.observations").fetchone()
    quarantined: dict[str, int] = dict(
        conn.execute(
            "select reason, count(*) from quarantine.labs_file_rejects group by 1"
        ).fetchall()
    )
    assert loaded == (summary.loaded,)
    assert quarantined == summary.quarantined
    ledger = conn.execute(
        "select sum(rows_received), sum(rows_loaded), sum(rows_quarantined), count(*),"
        " bool_and(status = 'loaded') from raw_labs._carehouse_files"
    ).fetchone()
    assert ledger == (summary.received, summary.loaded, summary.quarantined_total, 7, True)
    blank = next(f for f in summary.files if f.name == "03_blank_and_truncated.ndjson")
    assert blank.blank_lines == 2


def test_every_shape_loads_with_its_columns(corpus: Corpus, conn: psycopg.Connection) -> None:
    query = sql.SQL("select _source_file, _source_line, {} from raw_labs.observations").format(
        sql.SQL(", ").join(map(sql.Identifier, EXTRACTED_COLUMNS))
    )
    rows = conn.execute(query).fetchall()
    found = {(file, number): dict(zip(EXTRACTED_COLUMNS, values, strict=True))
             for file, number, *values in rows}  # fmt: skip
    expected = {key: case.loaded for key, case in corpus.lines.items() if case.loaded}
    assert set(found) == set(expected)
    for key, row in expected.items():
        assert found[key] == row, key


def test_the_resource_is_the_object_as_received(corpus: Corpus, conn: psycopg.Connection) -> None:
    stored: dict[int, object] = dict(
        conn.execute(
            "select _source_line, resource from raw_labs.observations"
            " where _source_file = '01_shapes.ndjson'"
        ).fetchall()
    )
    for number, case in enumerate(SHAPES, start=1):
        assert stored[number] == json.loads(case.text), number
    bundle = conn.execute(
        "select resource from raw_labs.observations where _source_file = '05_bundle.json'"
        " and _source_line = 1"
    ).fetchone()
    assert bundle == (observation(50),)
    # Numbers keep their digits in jsonb: 5.83 is not turned into a binary double.
    digits = conn.execute(
        "select resource #>> '{valueQuantity,value}' from raw_labs.observations"
        " where observation_id = 'obs-9'"
    ).fetchone()
    assert digits == ("5.83",)


def test_quarantine_keeps_each_refused_record_raw(corpus: Corpus, conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select source_file, source_line, reason, raw_line, source_hash"
        " from quarantine.labs_file_rejects"
    ).fetchall()
    found = {(file, number): reason for file, number, reason, _, _ in rows}
    assert found == {key: case.reason for key, case in corpus.lines.items() if case.reason}
    raw = {(file, number): text for file, number, _, text, _ in rows}
    assert raw[("02_dirty.ndjson", 11)] == "this is not json"
    assert "caf\\xe9" in raw[("02_dirty.ndjson", 15)]
    assert '"id":"obs-20"' in raw[("02_dirty.ndjson", 1)]
    assert '"OperationOutcome"' in raw[("05_bundle.json", 2)]
    assert raw[("06_bundle_cut.json", 3)].startswith('{"resource": {"resourceType"')
    for file, _, _, _, digest in rows:
        assert digest == hashlib.sha256((corpus.folder / file).read_bytes()).hexdigest()


def test_a_changed_type_is_quarantined_never_a_variant_column(
    corpus: Corpus, conn: psycopg.Connection
) -> None:
    types: dict[str, str] = dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'raw_labs' and table_name = 'observations'"
        ).fetchall()
    )
    assert types["value_numeric"] == types["reference_low"] == "numeric"
    assert types["resource"] == "jsonb"
    assert types["observation_id"] == "character varying"
    assert not [name for name in types if "__v_" in name]
    assert len(types) == len(EXTRACTED_COLUMNS) + 1 + 6


def test_new_fields_are_kept_and_reported(corpus: Corpus, conn: psycopg.Connection) -> None:
    assert corpus.summary.new_columns == ["resource.vendorScore"]
    assert "new columns: resource.vendorScore" in corpus.summary.one_line()
    kept = conn.execute(
        "select resource -> 'vendorScore' from raw_labs.observations"
        " where observation_id = 'obs-10'"
    ).fetchone()
    assert kept == ({"v": 1},)
    ledger = conn.execute(
        "select new_columns from raw_labs._carehouse_files where file_name = '01_shapes.ndjson'"
    ).fetchone()
    assert ledger == (["resource.vendorScore"],)


def test_summary_carries_counts_not_content(corpus: Corpus) -> None:
    text = json.dumps(corpus.summary.to_json()) + corpus.summary.one_line()
    assert "obs-" not in text and "Patient/" not in text


def test_loading_again_changes_nothing_and_a_resent_copy_is_skipped(
    corpus: Corpus, conn: psycopg.Connection, tmp_path: Path
) -> None:
    count = (
        "select (select count(*) from raw_labs.observations),"
        " (select count(*) from quarantine.labs_file_rejects),"
        " (select count(*) from raw_labs._carehouse_files)"
    )
    before = conn.execute(count).fetchone()
    again = load_labs(corpus.settings)
    assert (again.received, again.loaded, again.load_id) == (0, 0, None)
    assert len(again.skipped_files) == 7
    folder = tmp_path / "labs"
    folder.mkdir()
    shutil.copy(corpus.folder / "01_shapes.ndjson", folder / "export-copy (2).ndjson")
    resent = load_labs(corpus.settings.model_copy(update={"landing_dir": tmp_path}))
    assert resent.skipped_files == ["export-copy (2).ndjson"]
    assert resent.files[0].note == "same content as 01_shapes.ndjson"
    assert conn.execute(count).fetchone() == before


def test_a_file_changing_during_the_load_fails_it_and_leaves_nothing(
    warehouse: Settings,
    tmp_path: Path,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "labs"
    folder.mkdir()
    path = folder / "growing.ndjson"
    path.write_text(line(observation(900)) + "\n")
    real_discover = discover

    def discover_then_append(*args: Any) -> list[LandedFile]:
        found = real_discover(*args)
        with path.open("a") as handle:
            handle.write(line(observation(901)) + "\n")
        return found

    monkeypatch.setattr("carehouse.ingest.loader.discover", discover_then_append)
    settings = warehouse.model_copy(update={"landing_dir": tmp_path})
    with pytest.raises(FileChangedError, match=r"growing\.ndjson changed"):
        load_labs(settings)
    left = conn.execute(
        "select count(*) from raw_labs.observations where observation_id in ('obs-900', 'obs-901')"
    ).fetchone()
    assert left == (0,)
    monkeypatch.undo()
    assert load_labs(settings).loaded == 2


def test_a_large_export_mixing_clean_and_broken_blocks(
    warehouse: Settings, tmp_path: Path, conn: psycopg.Connection
) -> None:
    """Arrow reads the clean blocks; the block around a broken line is halved to find it."""
    folder = tmp_path / "labs"
    folder.mkdir()
    lines = [line(observation(100_000 + n)) for n in range(30_000)]
    lines[12_345] = lines[12_345][:-3]
    lines[20_000] = line(observation(120_000, valueQuantity={"value": "1"}))
    (folder / "big.ndjson").write_text("\n".join(lines) + "\n")
    summary = load_labs(warehouse.model_copy(update={"landing_dir": tmp_path}))
    assert (summary.loaded, summary.quarantined) == (
        29_998,
        {"invalid_json": 1, "wrong_type:valueQuantity.value": 1},
    )
    rejected = conn.execute(
        "select source_line from quarantine.labs_file_rejects where source_file = 'big.ndjson'"
        " order by 1"
    ).fetchall()
    assert rejected == [(12_346,), (20_001,)]
    lines_loaded = conn.execute(
        "select count(*), min(_source_line), max(_source_line), count(distinct observation_id)"
        " from raw_labs.observations where _source_file = 'big.ndjson'"
    ).fetchone()
    assert lines_loaded == (29_998, 1, 30_000, 29_998)


def test_demo_labs_load_exactly(warehouse: Settings, tmp_path: Path) -> None:
    files = generate_labs(tmp_path, seed=3, end_date=date(2025, 3, 31), days=3, scale=0.05)
    summary = load_labs(warehouse.model_copy(update={"landing_dir": tmp_path}))
    records = sum(len(p.read_bytes().splitlines()) for p in files if p.suffix == ".ndjson") + len(
        json.loads(files[-1].read_text())["entry"]
    )
    assert summary.received == records == summary.loaded + summary.quarantined_total
    assert summary.quarantined == {"invalid_json": 1, "not_an_observation": 1}


# ---- the two parsing paths -------------------------------------------------------------------


def test_arrow_and_line_by_line_agree(corpus: Corpus, tmp_path: Path) -> None:
    generate_labs(
        tmp_path, seed=9, end_date=date(2025, 1, 31), days=2, scale=0.2, file_defects=False
    )
    blocks = [ndjson(SHAPES), *(p.read_bytes() for p in sorted((tmp_path / "labs").glob("*")))]
    for block in blocks:
        fast, exact = parse_fast(block, 1), parse_exact(block, 1)
        assert fast is not None
        assert fast.rows.to_pylist() == exact.rows.to_pylist()
        assert fast.new_fields == exact.new_fields and fast.blank_lines == exact.blank_lines


@pytest.mark.parametrize("case", DIRTY, ids=lambda case: case.reason)
def test_arrow_refuses_every_dirty_line_it_cannot_vouch_for(case: Case) -> None:
    fast = parse_fast(case.text + b"\n", 1)
    exact = parse_exact(case.text + b"\n", 1)
    assert [(r.line, r.reason) for r in exact.rejects] == [(1, case.reason)]
    assert fast is None or [(r.line, r.reason) for r in fast.rejects] == [(1, case.reason)]


def test_a_line_too_long_to_hold_is_quarantined_with_its_head(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    path.write_bytes(b'{"a":"' + b"x" * 5000 + b'"}\n' + line(observation(1)).encode() + b"\n")
    with JsonLinesFile(path, block_bytes=1024, max_record_bytes=2048) as source:
        items = list(source.blocks())
        digest = source.sha256()
    assert isinstance(items[0], LongLine) and (items[0].line, items[0].size) == (1, 5009)
    assert isinstance(items[1], LineBlock) and items[1].first_line == 2
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
def test_a_bundle_streams_the_same_whatever_the_block_size(
    corpus: Corpus, block_bytes: int
) -> None:
    path = corpus.folder / "05_bundle.json"
    with JsonDocument(path, block_bytes=block_bytes) as document:
        entries = [(position, entry.text) for position, entry in bundles._entries(document)]
        document.rest()
        assert document.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
    bundle = json.loads(path.read_text())
    assert [json.loads(text) for _, text in entries] == bundle["entry"]
    assert [position for position, _ in entries] == [1, 2, 3, 4, 5]
