"""Admissions files into raw_admissions.admissions: nothing lost, nothing twice, lines right."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import dlt
import psycopg
import pytest
from psycopg import sql

from carehouse.core.settings import Settings
from carehouse.ingest import ledger, loader
from carehouse.ingest.admissions import load_admissions
from carehouse.ingest.summary import LoadSummary
from dlt_sources.admissions.settings import EXPECTED_COLUMNS
from dlt_sources.files import FileChangedError, LandedFile, discover

HEADER = ",".join(EXPECTED_COLUMNS)


def fields(tag: str, n: int, **values: str) -> list[str]:
    """One admission's fields, unique to the test through `tag`."""
    record = {
        "admission_id": f"{tag}-{n}",
        "patient_id": f"P{n:07d}",
        "admitted_at": "2025-01-01T10:00:00",
        "discharged_at": "2025-01-03T12:00:00",
        "department": "CARDIOLOGY",
        "admission_type": "emergency",
        "discharge_disposition": "home",
        "primary_diagnosis_code": "I21.4",
        "total_charges": "1234.50",
        "insurer_id": "INS001",
    }
    record.update(values)
    extra = [name for name in values if name not in EXPECTED_COLUMNS]
    return [record[name] for name in (*EXPECTED_COLUMNS, *extra)]


def line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)  # quotes fields with CR or LF
    return out.getvalue().removesuffix("\r\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Expect:
    """What a file must become: admission number loaded per line, reject reason per line."""

    loaded: dict[int, int] = field(default_factory=dict)
    rejects: dict[int, str] = field(default_factory=dict)


def write_corpus(folder: Path, tag: str) -> dict[str, Expect]:
    """Dirty files, and what each must become."""
    folder.mkdir(parents=True, exist_ok=True)

    def row(n: int, **values: str) -> str:
        return line(fields(tag, n, **values))

    with_nul = row(10, total_charges="12\x0034")
    files: dict[str, tuple[bytes, Expect]] = {
        # BOM, CRLF, a quoted newline in a field, and padding kept as sent.
        "01_bom_crlf.csv": (
            b"\xef\xbb\xbf"
            + "\r\n".join(
                [
                    HEADER,
                    row(1, department=" cardiology "),
                    row(2, department="ORTHO\r\nPAEDICS"),
                    row(3, insurer_id=""),
                ]
            ).encode()
            + b"\r\n",
            Expect(loaded={2: 1, 3: 2, 5: 3}),
        ),
        "02_blank_and_counts.csv": (
            "\n".join(
                [
                    HEADER,
                    row(4),
                    "",
                    ",".join(fields(tag, 5)[:9]),
                    row(6) + ",extra",
                    row(7),
                ]
            ).encode()
            + b"\n",
            Expect(loaded={2: 4, 6: 7}, rejects={4: "wrong_field_count", 5: "wrong_field_count"}),
        ),
        "03_latin1.csv": (
            f"{HEADER}\n".encode()
            + row(8, department="GÉRIATRIE").encode("latin-1")
            + f"\n{row(9)}\n".encode(),
            Expect(loaded={3: 9}, rejects={2: "invalid_utf8"}),
        ),
        "04_nul.csv": (
            f"{HEADER}\n{with_nul}\n{row(11)}\n".encode(),
            Expect(loaded={3: 11}, rejects={2: "nul_byte"}),
        ),
        "05_truncated.csv": (
            f"{HEADER}\n{row(12)}\n{row(13)[:30]}".encode(),
            Expect(loaded={2: 12}, rejects={3: "wrong_field_count"}),
        ),
        "06_unterminated.csv": (
            f'{HEADER}\n{row(14)}\n{row(15)[:-6]}"INS0'.encode(),
            Expect(loaded={2: 14}, rejects={3: "unterminated_quote"}),
        ),
        "07_header_only.csv": (f"{HEADER}\r\n".encode(), Expect()),
        "08_empty.csv": (b"", Expect()),
        "09_new_column.csv": (
            f"{HEADER},Ward Name\n{row(16, ward_name='W1')}\n{row(17, ward_name='')}\n".encode(),
            Expect(loaded={2: 16, 3: 17}),
        ),
        "10_missing_column.csv": (
            (
                ",".join(EXPECTED_COLUMNS[:-1])
                + "\n"
                + ",".join(fields(tag, 18)[:-1])
                + "\n"
                + ",".join(fields(tag, 19)[:-1])
                + "\n"
            ).encode(),
            Expect(rejects={2: "missing_columns", 3: "missing_columns"}),
        ),
        "11_reordered.csv": (
            (
                ",".join(reversed(EXPECTED_COLUMNS))
                + "\n"
                + ",".join(reversed(fields(tag, 20, insurer_id="INS007")))
                + "\n"
            ).encode(),
            Expect(loaded={2: 20}),
        ),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expect for name, (_, expect) in files.items()}


@dataclass
class Corpus:
    settings: Settings
    folder: Path
    tag: str
    expected: dict[str, Expect]
    summary: LoadSummary


@pytest.fixture(scope="module")
def corpus(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    landing = tmp_path_factory.mktemp("landing")
    tag = uuid4().hex[:10]
    expected = write_corpus(landing / "admissions", tag)
    loader_settings = settings.model_copy(update={"landing_dir": landing})
    summary = load_admissions(loader_settings)
    return Corpus(loader_settings, landing / "admissions", tag, expected, summary)


# The lineage of a raw row: its file's name, content hash, load id and ingestion time are in
# the file ledger, one join away.
RAW_WITH_FILE = sql.SQL(
    "raw_admissions.admissions as raw join raw_admissions._carehouse_files as files"
    " on files.file_id = raw._source_file_id"
)


def with_file(query: str) -> sql.Composed:
    """`query` with {} as the raw table joined to its files."""
    return sql.SQL(query).format(RAW_WITH_FILE)


def counts(conn: psycopg.Connection, load_id: str | None) -> tuple[int, dict[str, int], int]:
    raw = conn.execute(
        with_file("select count(*) from {} where files.load_id = %s"), (load_id,)
    ).fetchone()
    reasons: dict[str, int] = dict(
        conn.execute(
            "select reason, count(*) from quarantine.admissions_file_rejects"
            " where _dlt_load_id = %s group by reason",
            (load_id,),
        ).fetchall()
    )
    files = conn.execute(
        "select count(*) from raw_admissions._carehouse_files where load_id = %s", (load_id,)
    ).fetchone()
    assert raw is not None and files is not None
    return raw[0], reasons, files[0]


def test_every_record_is_loaded_or_quarantined(
    corpus: Corpus, admin_conn: psycopg.Connection
) -> None:
    summary = corpus.summary
    expected_loaded = sum(len(expect.loaded) for expect in corpus.expected.values())
    expected_reasons = Counter(
        reason for expect in corpus.expected.values() for reason in expect.rejects.values()
    )
    assert summary.loaded == expected_loaded
    assert summary.quarantined == dict(sorted(expected_reasons.items()))
    assert summary.received == summary.loaded + summary.quarantined_total
    assert summary.skipped_files == []
    # The tables say the same as the summary.
    raw, reasons, files = counts(admin_conn, summary.load_id)
    assert raw == summary.loaded
    assert reasons == summary.quarantined
    assert files == len(corpus.expected)
    for file in summary.files:
        ledger_row = admin_conn.execute(
            "select rows_received, rows_loaded, rows_quarantined, status, file_name"
            " from raw_admissions._carehouse_files where content_sha256 = %s",
            (file.sha256,),
        ).fetchone()
        assert ledger_row == (
            file.received,
            file.loaded,
            sum(file.quarantined.values()),
            "loaded",
            file.name,
        )
        assert file.received == file.loaded + sum(file.quarantined.values())


def test_rows_land_as_received_at_their_physical_line(
    corpus: Corpus, admin_conn: psycopg.Connection
) -> None:
    for name, outcome in corpus.expected.items():
        rows = admin_conn.execute(
            with_file(
                "select raw._source_line, raw.admission_id, files.content_sha256,"
                " files.ingested_at from {} where files.file_name = %s and files.load_id = %s"
                " order by raw._source_line"
            ),
            (name, corpus.summary.load_id),
        ).fetchall()
        assert [(line, admission) for line, admission, _, _ in rows] == [
            (line, f"{corpus.tag}-{n}") for line, n in outcome.loaded.items()
        ], name
        digest = sha256(corpus.folder / name)
        assert all(h == digest for _, _, h, _ in rows)
        assert all(at is not None for _, _, _, at in rows)
    # A raw row is its file's key and its line, nothing else per file; the key is unique.
    columns = admin_conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'raw_admissions' and table_name = 'admissions'"
        " order by ordinal_position"
    ).fetchall()
    assert [name for (name,) in columns if name.startswith("_")] == [
        "_source_line",
        "_source_file_id",
    ]
    duplicates = admin_conn.execute(
        "select count(*) from (select 1 from raw_admissions.admissions"
        " group by _source_file_id, _source_line having count(*) > 1) as repeated"
    ).fetchone()
    assert duplicates == (0,)
    values = admin_conn.execute(
        with_file(
            "select raw.admission_id, raw.department, raw.insurer_id from {}"
            " where files.file_name = '01_bom_crlf.csv' and files.load_id = %s"
            " order by raw._source_line"
        ),
        (corpus.summary.load_id,),
    ).fetchall()
    # No trimming, no case folding; the quoted CRLF stays; an empty field is NULL.
    assert values == [
        (f"{corpus.tag}-1", " cardiology ", "INS001"),
        (f"{corpus.tag}-2", "ORTHO\r\nPAEDICS", "INS001"),
        (f"{corpus.tag}-3", "CARDIOLOGY", None),
    ]
    reordered = admin_conn.execute(
        with_file(
            "select raw.insurer_id, raw.admission_id from {}"
            " where files.file_name = '11_reordered.csv' and files.load_id = %s"
        ),
        (corpus.summary.load_id,),
    ).fetchall()
    assert reordered == [("INS007", f"{corpus.tag}-20")]


def test_quarantine_keeps_each_rejected_record_raw(
    corpus: Corpus, admin_conn: psycopg.Connection
) -> None:
    rows = admin_conn.execute(
        "select source_file, source_line, reason, raw_line, source_hash"
        " from quarantine.admissions_file_rejects where _dlt_load_id = %s",
        (corpus.summary.load_id,),
    ).fetchall()
    found = {(file, line): reason for file, line, reason, _, _ in rows}
    expected = {
        (name, line): reason
        for name, outcome in corpus.expected.items()
        for line, reason in outcome.rejects.items()
    }
    assert found == expected
    raw = {(file, line): text for file, line, _, text, _ in rows}
    assert raw[("03_latin1.csv", 2)].startswith(f"{corpus.tag}-8,")
    assert "G\\xc9RIATRIE" in raw[("03_latin1.csv", 2)]
    assert "12\\x0034" in raw[("04_nul.csv", 2)]
    assert raw[("06_unterminated.csv", 3)].endswith('"INS0')
    assert all(h == sha256(corpus.folder / file) for file, _, _, _, h in rows)


def test_new_columns_are_kept_and_missing_ones_reject_the_file(
    corpus: Corpus, admin_conn: psycopg.Connection
) -> None:
    summary = corpus.summary
    assert summary.new_columns == ["ward_name"]
    wards = admin_conn.execute(
        with_file(
            "select raw.admission_id, raw.ward_name from {}"
            " where files.load_id = %s and files.file_name = '09_new_column.csv'"
            " order by raw._source_line"
        ),
        (summary.load_id,),
    ).fetchall()
    assert wards == [(f"{corpus.tag}-16", "W1"), (f"{corpus.tag}-17", None)]
    rejected = summary.rejected_files
    assert list(rejected) == ["10_missing_column.csv"]
    assert "insurer_id" in rejected["10_missing_column.csv"]
    assert "files rejected: 10_missing_column.csv" in summary.one_line()
    assert "new columns: ward_name" in summary.one_line()


def test_empty_and_header_only_files_are_recorded(corpus: Corpus) -> None:
    by_name = {f.name: f for f in corpus.summary.files}
    for name in ("07_header_only.csv", "08_empty.csv"):
        assert (by_name[name].status, by_name[name].received) == ("loaded", 0)
    assert by_name["02_blank_and_counts.csv"].blank_lines == 1


def test_summary_json(corpus: Corpus) -> None:
    data = json.loads(json.dumps(corpus.summary.to_json()))
    assert data["received"] == data["loaded"] + data["quarantined"]
    assert data["skipped"] == 0
    assert {"received", "loaded", "quarantined", "skipped"} <= data.keys()
    assert corpus.tag not in json.dumps(data)  # counts and names, never row content


def test_loading_again_changes_nothing(corpus: Corpus, admin_conn: psycopg.Connection) -> None:
    before = admin_conn.execute(
        "select (select count(*) from raw_admissions.admissions),"
        " (select count(*) from quarantine.admissions_file_rejects),"
        " (select count(*) from raw_admissions._carehouse_files)"
    ).fetchone()
    again = load_admissions(corpus.settings)
    assert (again.received, again.loaded, again.quarantined) == (0, 0, {})
    assert sorted(again.skipped_files) == sorted(corpus.expected)
    assert again.load_id is None
    after = admin_conn.execute(
        "select (select count(*) from raw_admissions.admissions),"
        " (select count(*) from quarantine.admissions_file_rejects),"
        " (select count(*) from raw_admissions._carehouse_files)"
    ).fetchone()
    assert after == before


def test_a_resent_copy_under_another_name_is_skipped(
    corpus: Corpus, tmp_path: Path, admin_conn: psycopg.Connection
) -> None:
    folder = tmp_path / "admissions"
    folder.mkdir()
    shutil.copy(corpus.folder / "01_bom_crlf.csv", folder / "resent (1).csv")
    (folder / "fresh.csv").write_text(f"{HEADER}\n{line(fields(corpus.tag, 99))}\n")
    summary = load_admissions(corpus.settings.model_copy(update={"landing_dir": tmp_path}))
    assert summary.skipped_files == ["resent (1).csv"]
    skipped = next(f for f in summary.files if f.status == "skipped")
    assert skipped.note == "same content as 01_bom_crlf.csv"
    assert (summary.received, summary.loaded) == (1, 1)
    copies = admin_conn.execute(
        with_file("select count(*) from {} where files.file_name = 'resent (1).csv'")
    ).fetchone()
    assert copies == (0,)


def test_a_single_file_path_loads_that_file(corpus: Corpus, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text(f"{HEADER}\n{line(fields(corpus.tag, 98))}\n{line(fields(corpus.tag, 97))}\n")
    summary = load_admissions(corpus.settings, path)
    assert [(f.name, f.loaded) for f in summary.files] == [("one.csv", 2)]


@pytest.mark.parametrize("crash_at", ["load", "commit"])
def test_an_interrupted_load_is_rolled_back_and_redone(
    settings: Settings,
    tmp_path: Path,
    admin_conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
) -> None:
    tag = uuid4().hex[:10]
    folder = tmp_path / "admissions"
    folder.mkdir()
    for part in range(2):
        rows = [line(fields(tag, part * 100 + n)) for n in range(50)]
        (folder / f"day{part}.csv").write_text("\n".join([HEADER, *rows, "1,2"]) + "\n")
    hashes = [sha256(folder / f"day{part}.csv") for part in range(2)]
    loader_settings = settings.model_copy(update={"landing_dir": tmp_path})

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    # A killed process never runs its own clean-up: only the start-up recovery runs.
    real_recover = loader._recover
    recoveries: list[int] = []

    def recover_at_start_only(*args: object) -> None:
        recoveries.append(1)
        if len(recoveries) == 1:
            real_recover(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "_recover", recover_at_start_only)
    if crash_at == "load":
        monkeypatch.setattr(dlt.Pipeline, "load", crash)
    else:
        monkeypatch.setattr(ledger, "commit", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_admissions(loader_settings)
    pending = admin_conn.execute(
        "select count(*) from raw_admissions._carehouse_files"
        " where status = 'pending' and content_sha256 = any(%s)",
        (hashes,),
    ).fetchone()
    assert pending == (2,)
    monkeypatch.undo()

    summary = load_admissions(loader_settings)
    assert (summary.received, summary.loaded, summary.quarantined) == (
        102,
        100,
        {"wrong_field_count": 2},
    )
    raw = admin_conn.execute(
        with_file(
            "select count(*), count(distinct (files.content_sha256, raw._source_line)),"
            " count(distinct files.load_id) from {} where files.content_sha256 = any(%s)"
        ),
        (hashes,),
    ).fetchone()
    assert raw == (100, 100, 1)
    # The rolled-back load left no row behind: every raw row belongs to a ledger file.
    orphans = admin_conn.execute(
        "select count(*) from raw_admissions.admissions as raw where not exists ("
        " select from raw_admissions._carehouse_files as files"
        " where files.file_id = raw._source_file_id)"
    ).fetchone()
    assert orphans == (0,)
    rejects = admin_conn.execute(
        "select count(*) from quarantine.admissions_file_rejects where source_hash = any(%s)",
        (hashes,),
    ).fetchone()
    assert rejects == (2,)
    assert ledger.pending_loads(admin_conn, "raw_admissions", "admissions") == []


def test_the_loader_owns_what_it_writes_and_the_transformer_can_read_it(
    corpus: Corpus, admin_conn: psycopg.Connection
) -> None:
    for schema, table in [
        ("raw_admissions", "admissions"),
        ("raw_admissions", "_carehouse_files"),
        ("quarantine", "admissions_file_rejects"),
    ]:
        owner, readable = admin_conn.execute(
            "select tableowner, has_table_privilege('carehouse_transformer', %s, 'select')"
            " from pg_tables where schemaname = %s and tablename = %s",
            (f"{schema}.{table}", schema, table),
        ).fetchone() or (None, None)
        assert (owner, readable) == ("carehouse_loader", True), table


def test_a_large_file_reads_back_exactly_as_pythons_csv_module_reads_it(
    settings: Settings, tmp_path: Path, admin_conn: psycopg.Connection
) -> None:
    """Lines sent to COPY unparsed, and lines parsed by Arrow, must mean the same."""
    tag = uuid4().hex[:10]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPECTED_COLUMNS)
    quote_all = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    for n in range(40_000):
        values = fields(tag, n)
        if n % 5_000 == 0:
            values[4] = "GENERAL\nMEDICINE"  # a block Arrow must parse
        if n % 3 == 0:
            values[8] = '1,234.50 "approx"'
            values[9] = ""
            quote_all.writerow(values)  # quoted, one line: sent raw after a strict check
        else:
            writer.writerow(values)
    folder = tmp_path / "admissions"
    folder.mkdir()
    path = folder / "big.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    summary = load_admissions(settings.model_copy(update={"landing_dir": tmp_path}))
    assert (summary.loaded, summary.quarantined) == (40_000, {})
    expected = [
        tuple(value or None for value in row)
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    ][1:]
    query = sql.SQL(
        "select {columns} from {raw} where files.content_sha256 = %s order by raw._source_line"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier("raw", column) for column in EXPECTED_COLUMNS),
        raw=RAW_WITH_FILE,
    )
    loaded = admin_conn.execute(query, (sha256(path),)).fetchall()
    assert loaded == expected


def test_a_file_changing_during_the_load_fails_it_and_leaves_nothing(
    settings: Settings,
    tmp_path: Path,
    admin_conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = uuid4().hex[:10]
    folder = tmp_path / "admissions"
    folder.mkdir()
    path = folder / "growing.csv"
    path.write_text(f"{HEADER}\n{line(fields(tag, 1))}\n")
    real_discover = discover

    def discover_then_append(*args: object) -> list[LandedFile]:
        found = real_discover(*args)  # type: ignore[arg-type]
        with path.open("a") as handle:  # the sender is still writing
            handle.write(f"{line(fields(tag, 2))}\n")
        return found

    monkeypatch.setattr("carehouse.ingest.loader.discover", discover_then_append)
    loader_settings = settings.model_copy(update={"landing_dir": tmp_path})
    with pytest.raises(FileChangedError, match=r"growing\.csv changed while it was loaded"):
        load_admissions(loader_settings)
    leftovers = admin_conn.execute(
        "select (select count(*) from raw_admissions.admissions where admission_id like %s),"
        " (select count(*) from raw_admissions._carehouse_files where file_name = 'growing.csv')",
        (f"{tag}-%",),
    ).fetchone()
    assert leftovers == (0, 0)
    monkeypatch.undo()
    assert load_admissions(loader_settings).loaded == 2
