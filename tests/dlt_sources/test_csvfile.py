"""The landed-CSV reader: every record accounted for, lines right, whatever the block size."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from dlt_sources._common.csvfile import CsvFile, ends_inside_quotes

HEADER = b"a,b,c"

Rows = list[tuple[int, tuple[str, ...]]]
Rejects = list[tuple[int, str]]

# name -> (file bytes, loadable rows as (line, fields), rejects as (line, reason))
CASES: dict[str, tuple[bytes, Rows, Rejects]] = {
    "clean": (HEADER + b"\n1,2,3\n4,5,6\n", [(2, ("1", "2", "3")), (3, ("4", "5", "6"))], []),
    "no final newline": (
        HEADER + b"\n1,2,3\n4,5,6",
        [(2, ("1", "2", "3")), (3, ("4", "5", "6"))],
        [],
    ),
    "quoted everything": (
        HEADER + b'\n"1","a,b","x""y"\n',
        [(2, ("1", "a,b", 'x"y'))],
        [],
    ),
    "bom and crlf": (
        b"\xef\xbb\xbf" + HEADER + b"\r\n1,2,3\r\n4,5,6\r\n",
        [(2, ("1", "2", "3")), (3, ("4", "5", "6"))],
        [],
    ),
    "quoted newline": (
        HEADER + b'\n1,"x\r\ny",3\n4,5,6\n',
        [(2, ("1", "x\r\ny", "3")), (4, ("4", "5", "6"))],
        [],
    ),
    "blank lines": (
        HEADER + b"\n\n1,2,3\r\n\r\n4,5,6\n\n",
        [(3, ("1", "2", "3")), (5, ("4", "5", "6"))],
        [],
    ),
    "wrong field counts": (
        HEADER + b"\n1,2\n1,2,3\n1,2,3,4\n",
        [(3, ("1", "2", "3"))],
        [(2, "wrong_field_count"), (4, "wrong_field_count")],
    ),
    # One field short and one too many: the commas add up, the lines are still wrong.
    "field counts that add up": (
        HEADER + b"\n1,2\n1,2,3,4\n5,6,7\n",
        [(4, ("5", "6", "7"))],
        [(2, "wrong_field_count"), (3, "wrong_field_count")],
    ),
    "extra field on a last line without newline": (
        HEADER + b"\r\n1,2,3\r\n4,5,6,7",
        [(2, ("1", "2", "3"))],
        [(3, "wrong_field_count")],
    ),
    "invalid utf-8": (
        HEADER + b"\n1,\xff\xfe,3\n4,5,6\n",
        [(3, ("4", "5", "6"))],
        [(2, "invalid_utf8")],
    ),
    "nul byte": (HEADER + b"\n1,\x002,3\n4,5,6\n", [(3, ("4", "5", "6"))], [(2, "nul_byte")]),
    "truncated last line": (
        HEADER + b"\n1,2,3\n4,5",
        [(2, ("1", "2", "3"))],
        [(3, "wrong_field_count")],
    ),
    "unterminated quote": (
        HEADER + b'\n1,2,3\n4,5,"six\n7,8,9\n',
        [(2, ("1", "2", "3"))],
        [(3, "unterminated_quote")],
    ),
    "stray quote inside a field": (
        HEADER + b'\n1,b"c,3\n4,5,6\n',
        [(2, ("1", 'b"c', "3")), (3, ("4", "5", "6"))],
        [],
    ),
    "bare carriage return": (
        HEADER + b"\n1,2,3\r4,5,6\n7,8,9\n",
        [(3, ("7", "8", "9"))],
        [(2, "malformed_csv")],
    ),
    "header only": (HEADER + b"\n", [], []),
    "header only, no newline": (HEADER, [], []),
}


def read(
    path: Path, block_bytes: int
) -> tuple[list[tuple[int, tuple[str, ...]]], list[tuple[int, str]]]:
    rows: list[tuple[int, tuple[str, ...]]] = []
    rejects: list[tuple[int, str]] = []
    with CsvFile(path, block_bytes=block_bytes) as csv_file:
        for records in csv_file.records():
            lines = records.lines.to_pylist()
            if records.raw is not None:
                values = [tuple(next(csv.reader([line]))) for line in records.raw.to_pylist()]
            else:
                assert records.columns is not None
                values = list(zip(*(column.to_pylist() for column in records.columns), strict=True))
            rows += list(zip(lines, values, strict=True))
            rejects += [(reject.line, reject.reason) for reject in records.rejects]
    return rows, rejects


@pytest.mark.parametrize("block_bytes", [5, 16, 1 << 20])
@pytest.mark.parametrize("case", list(CASES))
def test_every_record_lands_once_with_its_line(tmp_path: Path, case: str, block_bytes: int) -> None:
    data, expected_rows, expected_rejects = CASES[case]
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    rows, rejects = read(path, block_bytes)
    assert rows == expected_rows
    assert rejects == expected_rejects


def test_rejects_keep_the_raw_text_with_bad_bytes_escaped(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(HEADER + b'\n1,\xe9,3\r\n4,5,"six\r\nseven')
    with CsvFile(path) as csv_file:
        rejects = [reject for records in csv_file.records() for reject in records.rejects]
    assert [(r.line, r.reason, r.raw) for r in rejects] == [
        (2, "invalid_utf8", "1,\\xe9,3"),
        (3, "unterminated_quote", '4,5,"six\r\nseven'),
    ]


def test_empty_file_has_no_header(tmp_path: Path) -> None:
    for data in (b"", b"\xef\xbb\xbf"):
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        with CsvFile(path) as csv_file:
            assert csv_file.header is None
            assert list(csv_file.records()) == []


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (b"\n1,2,3\n", "blank"),
        (b'a,"b,c\n1,2,3\n', "unbalanced quote"),
        (b"a,\xffb,c\n1,2,3\n", "UTF-8"),
    ],
)
def test_unusable_header_rejects_every_record(tmp_path: Path, header: bytes, error: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(header + b"4,5,6\n")
    with CsvFile(path) as csv_file:
        assert csv_file.header is not None
        assert csv_file.header.error is not None
        assert error in csv_file.header.error
        with pytest.raises(ValueError, match="reject_all"):
            list(csv_file.records())
    with CsvFile(path) as csv_file:
        rejects = [r for records in csv_file.records(reject_all="bad") for r in records.rejects]
    assert [(r.line, r.reason) for r in rejects] == [
        (line, "bad") for line in range(2, header.count(b"\n") + 2)
    ]


def test_paths_agree_with_pythons_csv_module_on_a_large_mixed_file(tmp_path: Path) -> None:
    """Raw lines, Arrow-parsed blocks and exact blocks must all give what csv.reader gives."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["a", "b", "c"])
    expected: Rows = []
    line = 2
    for index in range(60_000):
        if index % 9_000 == 0:
            fields = (f"{index}", "note with\na newline", "")  # multi-line: parsed path
        elif index % 7 == 0:
            fields = (f"{index}", 'quoted, with "quotes"', " padded ")  # regex raw path
        else:
            fields = (f"{index}", "plain", "")
        writer.writerow(fields)
        expected.append((line, fields))
        line += 1 + fields[1].count("\n")
    path = tmp_path / "big.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    rows, rejects = read(path, 1 << 16)
    assert rejects == []
    assert rows == expected


@pytest.mark.parametrize(
    ("record", "open_quote"),
    [
        (b'1,2,"three"', False),
        (b'1,2,"th""ree"', False),
        (b'1,2,"three', True),
        (b'1,2,"th""ree', True),
        (b'1,b"c,3', False),
        (b'1,"a\nb', True),
    ],
)
def test_ends_inside_quotes(record: bytes, open_quote: bool) -> None:
    assert ends_inside_quotes(record) is open_quote
