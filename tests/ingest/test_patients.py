"""Patient snapshots into raw_patients.patients: dated, nothing lost, nothing twice."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.demo.patients import generate_patients
from carehouse.ingest.patients import load_patients
from carehouse.ingest.summary import LoadSummary
from dlt_sources.patients.helpers import snapshot_date
from dlt_sources.patients.settings import EXPECTED_COLUMNS
from tests.support.warehouse import isolated_warehouse

HEADER = ",".join(EXPECTED_COLUMNS)


def fields(n: int, **values: str) -> list[str]:
    record = {
        "patient_id": f"P{n:07d}",
        "given_name": "Anna",
        "family_name": "Lee",
        "birth_date": "1950-01-31",
        "sex": "F",
        "address_line": "12 Station Road",
        "postal_code": "12345",
        "insurer_id": "INS001",
        "plan": "BASIC",
        "updated_at": "2025-01-01T10:00:00",
    }
    record.update(values)
    extra = [name for name in values if name not in EXPECTED_COLUMNS]
    return [record[name] for name in (*EXPECTED_COLUMNS, *extra)]


def line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue().removesuffix("\r\n")


@dataclass(frozen=True)
class Expect:
    """Patient number loaded per line, reject reason per line, and the snapshot date."""

    loaded: dict[int, int] = field(default_factory=dict)
    rejects: dict[int, str] = field(default_factory=dict)
    day: str | None = None


def write_corpus(folder: Path) -> dict[str, Expect]:
    folder.mkdir(parents=True)

    def row(n: int, **values: str) -> str:
        return line(fields(n, **values))

    files: dict[str, tuple[bytes, Expect]] = {
        "patients_2025-03-01.csv": (
            b"\xef\xbb\xbf"
            + "\r\n".join(
                [HEADER, row(1, given_name=" Anna "), row(2, address_line="Flat 2\r\n12 Mill Rd"),
                 row(3, insurer_id="", plan="")]
            ).encode()
            + b"\r\n",
            Expect(loaded={2: 1, 3: 2, 5: 3}, day="2025-03-01"),
        ),
        "patients_2025-03-02.csv": (
            "\n".join([HEADER, row(1), "", ",".join(fields(4)[:9]), row(5) + ",x", row(6)]).encode()
            + b"\n"
            + row(7, family_name="Müller").encode("latin-1")
            + b"\n"
            + row(8)[:20].encode(),
            Expect(
                loaded={2: 1, 6: 6},
                rejects={4: "wrong_field_count", 5: "wrong_field_count", 7: "invalid_utf8",
                         8: "wrong_field_count"},
                day="2025-03-02",
            ),
        ),
        "patients_2025-03-03.csv": (
            f"{HEADER},Email Address\n{row(9, email_address='a@example.org')}\n".encode(),
            Expect(loaded={2: 9}, day="2025-03-03"),
        ),
        "patients_2025-03-04.csv": (
            (",".join(EXPECTED_COLUMNS[:-2]) + "\n" + ",".join(fields(10)[:-2]) + "\n").encode(),
            Expect(rejects={2: "missing_columns"}, day="2025-03-04"),
        ),
        "patients_2025-03-05.csv": (f"{HEADER}\n".encode(), Expect(day="2025-03-05")),
        "patients_2025-03-06.csv": (b"", Expect(day="2025-03-06")),
        "patients_latest.csv": (
            f"{HEADER}\n{row(11)}\n{row(12)}\n".encode(),
            Expect(rejects={2: "no_snapshot_date", 3: "no_snapshot_date"}),
        ),
        "patients_2025-03-07.csv": (
            (",".join(reversed(EXPECTED_COLUMNS)) + "\n"
             + ",".join(reversed(fields(13, plan="PREMIUM"))) + "\n").encode(),
            Expect(loaded={2: 13}, day="2025-03-07"),
        ),
    }  # fmt: skip
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expect for name, (_, expect) in files.items()}


@dataclass
class Corpus:
    settings: Settings
    folder: Path
    expected: dict[str, Expect]
    summary: LoadSummary


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    with isolated_warehouse(settings, "patients") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def corpus(warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    landing = tmp_path_factory.mktemp("landing")
    expected = write_corpus(landing / "patients")
    loader_settings = warehouse.model_copy(update={"landing_dir": landing})
    return Corpus(loader_settings, landing / "patients", expected, load_patients(loader_settings))


@pytest.fixture()
def conn(warehouse: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.dsn("admin"), autocommit=True) as connection:
        yield connection


# The lineage of a raw row: its file's name, content hash and load are in the file ledger,
# one join away.
RAW_WITH_FILE = (
    " from raw_patients.patients as raw join raw_patients._carehouse_files as files"
    " on files.file_id = raw._source_file_id"
)


def counts(conn: psycopg.Connection) -> tuple[object, ...]:
    row = conn.execute(
        "select (select count(*) from raw_patients.patients),"
        " (select count(*) from quarantine.patients_file_rejects),"
        " (select count(*) from raw_patients._carehouse_files)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_every_record_is_loaded_or_quarantined(corpus: Corpus, conn: psycopg.Connection) -> None:
    summary = corpus.summary
    reasons = Counter(r for expect in corpus.expected.values() for r in expect.rejects.values())
    assert summary.loaded == sum(len(expect.loaded) for expect in corpus.expected.values())
    assert summary.quarantined == dict(sorted(reasons.items()))
    assert summary.received == summary.loaded + summary.quarantined_total
    assert counts(conn) == (summary.loaded, summary.quarantined_total, len(corpus.expected))
    for file in summary.files:
        assert file.received == file.loaded + sum(file.quarantined.values())


def test_rows_land_as_received_with_their_snapshot_date(
    corpus: Corpus, conn: psycopg.Connection
) -> None:
    for name, expect in corpus.expected.items():
        rows = conn.execute(
            "select raw._source_line, raw.patient_id, raw._snapshot_date, files.content_sha256"
            + RAW_WITH_FILE
            + " where files.file_name = %s order by raw._source_line",
            (name,),
        ).fetchall()
        assert [(n, patient) for n, patient, _, _ in rows] == [
            (n, f"P{patient:07d}") for n, patient in expect.loaded.items()
        ], name
        digest = hashlib.sha256((corpus.folder / name).read_bytes()).hexdigest()
        for _, _, day, source_hash in rows:
            assert (day.isoformat(), source_hash) == (expect.day, digest)
    # Per row, only the snapshot date, the line and the file's key: the rest is per file.
    columns = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'raw_patients' and table_name = 'patients'"
        " order by ordinal_position"
    ).fetchall()
    assert [name for (name,) in columns if name.startswith("_")] == [
        "_snapshot_date",
        "_source_line",
        "_source_file_id",
    ]
    values = conn.execute(
        "select raw.given_name, raw.address_line, raw.insurer_id, raw.plan"
        + RAW_WITH_FILE
        + " where files.file_name = 'patients_2025-03-01.csv' order by raw._source_line"
    ).fetchall()
    assert values == [
        (" Anna ", "12 Station Road", "INS001", "BASIC"),
        ("Anna", "Flat 2\r\n12 Mill Rd", "INS001", "BASIC"),
        ("Anna", "12 Station Road", None, None),
    ]
    reordered = conn.execute(
        "select raw.plan" + RAW_WITH_FILE + " where files.file_name = 'patients_2025-03-07.csv'"
    ).fetchone()
    assert reordered == ("PREMIUM",)


def test_quarantine_keeps_each_rejected_record_raw(
    corpus: Corpus, conn: psycopg.Connection
) -> None:
    rows = conn.execute(
        "select source_file, source_line, reason, raw_line from quarantine.patients_file_rejects"
    ).fetchall()
    assert {(f, n): reason for f, n, reason, _ in rows} == {
        (name, n): reason
        for name, expect in corpus.expected.items()
        for n, reason in expect.rejects.items()
    }
    raw = {(f, n): text for f, n, _, text in rows}
    assert "M\\xfcller" in raw[("patients_2025-03-02.csv", 7)]
    assert raw[("patients_latest.csv", 2)].startswith("P0000011,Anna")


def test_a_file_without_a_date_is_rejected_whole_and_named(corpus: Corpus) -> None:
    rejected = corpus.summary.rejected_files
    assert set(rejected) == {"patients_latest.csv", "patients_2025-03-04.csv"}
    assert rejected["patients_latest.csv"].startswith("no_snapshot_date")
    assert "files rejected:" in corpus.summary.one_line()
    assert "patients_latest.csv" in corpus.summary.one_line()


def test_new_columns_are_kept_and_reported(corpus: Corpus, conn: psycopg.Connection) -> None:
    assert corpus.summary.new_columns == ["email_address"]
    kept = conn.execute(
        "select patient_id, email_address from raw_patients.patients"
        " where email_address is not null"
    ).fetchall()
    assert kept == [("P0000009", "a@example.org")]


def test_summary_json_has_counts_not_content(corpus: Corpus) -> None:
    data = json.dumps(corpus.summary.to_json())
    assert "P00000" not in data and "Anna" not in data


def test_loading_again_changes_nothing(corpus: Corpus, conn: psycopg.Connection) -> None:
    before = counts(conn)
    again = load_patients(corpus.settings)
    assert (again.received, again.loaded, again.load_id) == (0, 0, None)
    assert sorted(again.skipped_files) == sorted(corpus.expected)
    assert counts(conn) == before


def test_a_resent_copy_is_skipped_and_a_renamed_undated_file_loads(
    corpus: Corpus, conn: psycopg.Connection, tmp_path: Path
) -> None:
    folder = tmp_path / "patients"
    folder.mkdir()
    shutil.copy(corpus.folder / "patients_2025-03-01.csv", folder / "patients_2025-03-01 (1).csv")
    # The sender fixes the name of the file it sent undated: the same bytes, now dated.
    shutil.copy(corpus.folder / "patients_latest.csv", folder / "patients_2025-03-08.csv")
    shutil.copy(corpus.folder / "patients_latest.csv", folder / "patients_latest_copy.csv")
    settings = corpus.settings.model_copy(update={"landing_dir": tmp_path})
    summary = load_patients(settings)
    assert sorted(summary.skipped_files) == [
        "patients_2025-03-01 (1).csv",
        "patients_latest_copy.csv",
    ]
    assert (summary.received, summary.loaded, summary.quarantined) == (2, 2, {})
    digest = hashlib.sha256((folder / "patients_2025-03-08.csv").read_bytes()).hexdigest()
    dated = conn.execute(
        "select count(*), min(raw._snapshot_date)"
        + RAW_WITH_FILE
        + " where files.content_sha256 = %s",
        (digest,),
    ).fetchone()
    assert dated == (2, date(2025, 3, 8))
    # Its rejection is replaced, not kept beside the load.
    assert conn.execute(
        "select count(*) from quarantine.patients_file_rejects where source_hash = %s", (digest,)
    ).fetchone() == (0,)
    assert conn.execute(
        "select file_name, rejected_reason from raw_patients._carehouse_files"
        " where content_sha256 = %s",
        (digest,),
    ).fetchall() == [("patients_2025-03-08.csv", None)]
    again = load_patients(settings)
    assert again.loaded == 0 and len(again.skipped_files) == 3


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("patients_2025-03-01.csv", date(2025, 3, 1)),
        ("2025-03-01_resent.csv", date(2025, 3, 1)),
        ("patients.csv", None),
        ("patients_2025-02-30.csv", None),
        ("patients_2025-03-01_2025-03-02.csv", None),
        ("patients_20250301.csv", None),
        ("patients_12025-03-01.csv", None),
    ],
)
def test_the_snapshot_date_comes_from_the_file_name(name: str, day: date | None) -> None:
    assert snapshot_date(name) == day


def test_the_loader_owns_what_it_writes_and_the_transformer_can_read_it(
    corpus: Corpus, conn: psycopg.Connection
) -> None:
    for schema, table in [
        ("raw_patients", "patients"),
        ("raw_patients", "_carehouse_files"),
        ("quarantine", "patients_file_rejects"),
    ]:
        owner, readable = conn.execute(
            "select tableowner, has_table_privilege('carehouse_transformer', %s, 'select')"
            " from pg_tables where schemaname = %s and tablename = %s",
            (f"{schema}.{table}", schema, table),
        ).fetchone() or (None, None)
        assert (owner, readable) == ("carehouse_loader", True), table


def test_demo_snapshots_load_exactly(warehouse: Settings, tmp_path: Path) -> None:
    files = generate_patients(tmp_path, seed=4, end_date=date(2025, 3, 31), days=6, scale=0.05)
    summary = load_patients(warehouse.model_copy(update={"landing_dir": tmp_path}))
    records = 0
    for path in files[:-1]:
        text = path.read_bytes().decode("utf-8-sig")
        records += sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1
    assert summary.received == records == summary.loaded + summary.quarantined_total
    assert summary.quarantined == {"wrong_field_count": 1}  # the truncated last line
    assert summary.skipped_files == [files[-1].name]
