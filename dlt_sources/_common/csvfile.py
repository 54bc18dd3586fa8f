"""Landed CSV files, read robustly and fast as Arrow arrays with physical line numbers.

A file is streamed in blocks cut at record boundaries (a newline after an even
number of quote characters). Each block takes the cheapest path that is
provably right for it:

1. raw: every line is one strict RFC 4180 record with the header's field count
   (checked vectorised: comma counts, or a regular expression when there are
   quotes), valid UTF-8, no NUL, no blank line. The lines themselves are
   returned: Postgres COPY reads them exactly as any CSV parser would, so they
   need no parsing and no re-quoting.
2. parsed: Arrow's CSV reader, when the result can be trusted: no row Arrow had
   to reject, and as many physical lines as the rows and the newlines inside
   their fields account for.
3. exact: record by record with Python's csv module, which sorts out what
   cannot be loaded.

Every record ends in exactly one place: a row of a `Records` run, or a
`Reject` carrying its raw text.

Semantics:

- Line numbers are physical: a line ends with a line feed (CR LF counts as one);
  the header is line 1; a record's line is the line it starts on.
- A UTF-8 byte-order mark at the start of the file is dropped.
- The header is the first line. A blank line is not a record: it is counted
  (`CsvFile.blank_lines`), not loaded.
- Fields are kept as received: no trimming, no type conversion.
- An open quote that never closes before the end of the file makes the last
  record a reject (``unterminated_quote``); the data after it is in its raw text.
- A record that is cut short but still well formed (a file truncated inside its
  last field, without quotes) cannot be told from a whole one and is loaded.
- Memory is bounded by the block size, unless one physical line is longer; an
  open quote holds back at most ``MAX_PENDING_BYTES`` before the reader cuts
  at a newline anyway (the damaged record then goes to the rejects).
"""

from __future__ import annotations

import csv
import hashlib
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from dlt_sources.files import Reject

BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_BYTES = 1 << 20
MAX_PENDING_BYTES = 16 << 20

# Why a record was rejected (the quarantine `reason`).
WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_UTF8 = "invalid_utf8"
UNTERMINATED_QUOTE = "unterminated_quote"
MALFORMED_CSV = "malformed_csv"
NUL_BYTE = "nul_byte"

_QUOTE = ord('"')
_COMMA = ord(",")
_NEWLINES = (ord("\n"), ord("\r"))
# Every byte but the comma and the line feed: deleting them leaves a block's separators,
# which show every line's field count at once (cheaper than counting line by line).
_NOT_SEPARATOR = bytes(byte for byte in range(256) if byte not in (_COMMA, ord("\n")))


@dataclass(frozen=True)
class Header:
    """The first line of a file: column names, or why it cannot serve as a header."""

    names: tuple[str, ...]
    error: str | None = None


@dataclass
class Records:
    """A run of consecutive records: the loadable ones, and the rejects.

    Loadable records come either as `raw` lines (each one strict RFC 4180
    record, without its line terminator) or as parsed `columns` (one string
    array per header field, in file order).
    """

    lines: pa.Array  # int64: the physical line each loadable record starts on
    columns: list[pa.Array] | None = None
    raw: pa.Array | None = None
    rejects: list[Reject] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        """Loadable records."""
        return len(self.lines)


class CsvFile:
    """One landed CSV file; read `header`, then iterate `records()` once."""

    def __init__(self, path: Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self.blank_lines = 0
        self._file: BinaryIO = path.open("rb")
        # Reading and hashing the next block overlap with parsing this one (both release
        # the GIL); one block ahead at most, and hashed in order.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-read")
        self._ahead: Future[bytes] | None = None
        self._digest = hashlib.sha256()
        self._pending = b""
        self._next_line = 1
        self._eof = False
        self.header = self._read_header()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._reader.shutdown(wait=True)  # a read still in flight ends before the file closes
        self._file.close()

    def _read(self) -> bytes:
        if self._eof:
            return b""
        ahead, self._ahead = self._ahead, None
        block = ahead.result() if ahead is not None else self._read_block()
        self._eof = not block
        if not self._eof:
            self._ahead = self._reader.submit(self._read_block)
        return block

    def _read_block(self) -> bytes:
        block = self._file.read(self.block_bytes)
        self._digest.update(block)
        return block

    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far: of the whole file once `records()` is done."""
        if self._ahead is not None:
            self._ahead.result()  # the block read ahead is hashed already, or being hashed
        return self._digest.hexdigest()

    def _read_header(self) -> Header | None:
        # The header is the first physical line: a column name never spans lines, and a
        # stray quote in it must not swallow the records that follow.
        buf = self._read()
        if buf.startswith(BOM):
            buf = buf[len(BOM) :]
        while b"\n" not in buf and not self._eof and len(buf) <= MAX_PENDING_BYTES:
            buf += self._read()
        end = buf.find(b"\n") + 1 or len(buf)
        record, self._pending = buf[:end], buf[end:]
        self._next_line = 2
        if not record:
            return None
        error = _header_error(record)
        if error:
            return Header(names=(), error=error)
        return Header(names=tuple(next(csv.reader([record.decode("utf-8")]))))

    def records(self, *, reject_all: str | None = None) -> Iterator[Records]:
        """Every record after the header; with `reject_all`, every one rejected for that reason."""
        if self.header is None:
            return
        if self.header.error and not reject_all:
            raise ValueError(f"{self.path.name}: {self.header.error}; read it with reject_all")
        fields = len(self.header.names)
        for chunk, first_line, final in self._chunks():
            result = None
            if not reject_all and b"\x00" not in chunk:
                # A blank line fails the raw path's field count; Arrow would take it for a row.
                result = _as_raw_lines(chunk, first_line, fields)
                if result is None and not _has_blank_line(chunk):
                    result = _parse_fast(chunk, first_line, fields, final)
            if result is None:
                result = self._parse_exact(chunk, first_line, fields, reject_all)
            yield result

    def _chunks(self) -> Iterator[tuple[bytes, int, bool]]:
        """Blocks of whole records: (bytes, first physical line, is the end of the file)."""
        pending, line = self._pending, self._next_line
        self._pending = b""
        while True:
            block = self._read()
            if not block:
                if pending:
                    yield pending, line, True
                return
            buf = pending + block if pending else block
            cut = _last_record_end(buf)
            if cut < 0 and len(buf) > MAX_PENDING_BYTES:
                # A quote that never closes: give up on it at the last newline.
                cut = buf.rfind(b"\n") + 1
            if cut <= 0:
                pending = buf
                continue
            chunk, pending = buf[:cut], buf[cut:]
            yield chunk, line, False
            line += chunk.count(b"\n")

    def _parse_exact(
        self, chunk: bytes, first_line: int, fields: int, reject_all: str | None
    ) -> Records:
        raw_lines = chunk.split(b"\n")
        if raw_lines[-1] == b"":
            raw_lines.pop()
            raw_lines = [line + b"\n" for line in raw_lines]
        else:
            raw_lines = [line + b"\n" for line in raw_lines[:-1]] + [raw_lines[-1]]
        consumed = 0

        def feed() -> Iterator[str]:
            nonlocal consumed
            for raw_line in raw_lines:
                consumed += 1
                # surrogateescape: undecodable bytes survive to be judged per record
                yield raw_line.decode("utf-8", "surrogateescape")

        reader = csv.reader(feed(), strict=False)
        rows: list[list[str]] = []
        lines: list[int] = []
        rejects: list[Reject] = []
        start = 0
        while True:
            reason: str | None = None
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                values = []
                reason = NUL_BYTE if "NUL" in str(err) else MALFORMED_CSV
            raw = b"".join(raw_lines[start:consumed])
            line_number = first_line + start
            last = consumed == len(raw_lines)
            start = consumed
            if reason is None:
                if not values and raw.strip(b"\r\n") == b"":
                    self.blank_lines += 1
                    continue
                # A chunk ends on a record boundary unless the file ended or an open
                # quote forced a cut: then its last record is damaged either way.
                reason = reject_all or _judge(raw, values, fields, last)
            if reason is not None:
                rejects.append(Reject(line_number, reason, escape_raw(raw)))
            else:
                rows.append(values)
                lines.append(line_number)
        columns = (
            [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
            if rows
            else [pa.array([], pa.string()) for _ in range(fields)]
        )
        return Records(lines=pa.array(lines, pa.int64()), columns=columns, rejects=rejects)


def _header_error(record: bytes) -> str | None:
    """Why the first line cannot be a header, or None."""
    if not record.strip(b"\r\n"):
        return "the first line is blank"
    if b"\x00" in record:
        return "the header contains a NUL byte"
    if record.count(b'"') % 2:
        return "the header has an unbalanced quote"
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"the header is not valid UTF-8 (byte {err.start})"
    try:
        next(csv.reader([text]))
    except csv.Error as err:
        return f"the header is not CSV: {err}"
    return None


def _judge(raw: bytes, values: list[str], fields: int, last_of_chunk: bool) -> str | None:
    """Why a parsed record cannot be loaded, or None when it can."""
    if b"\x00" in raw:
        return NUL_BYTE
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_UTF8
    if last_of_chunk and ends_inside_quotes(raw):
        return UNTERMINATED_QUOTE
    if len(values) != fields:
        return WRONG_FIELD_COUNT
    return None


def _record_pattern(fields: int) -> str:
    """A regular expression matching one strict RFC 4180 record of `fields` fields on one line."""
    field_ = r'(?:"(?:[^"]|"")*"|[^",\r\n]*)'
    return f"^{field_}(?:,{field_}){{{fields - 1}}}$"


def _separators(fields: int, lines: int, chunk: bytes) -> bytes:
    """The commas and line feeds of `lines` unquoted lines of `fields` fields, in order."""
    record = b"," * (fields - 1)
    if chunk.endswith(b"\n"):
        return (record + b"\n") * lines
    return (record + b"\n") * (lines - 1) + record


def _as_raw_lines(chunk: bytes, first_line: int, fields: int) -> Records | None:
    """The block's lines, when each is one strict record with `fields` fields; else None."""
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Zero-copy: one string spanning the whole block, split on newlines by Arrow.
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(chunk)))
    block = pa.StringArray.from_buffers(1, offsets, pa.py_buffer(chunk))
    lines = pc.list_flatten(pc.split_pattern(block, "\n"))
    if chunk.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    if b"\r" in chunk:
        lines = pc.replace_substring_regex(lines, "\r$", "")
        if pc.any(pc.match_substring(lines, "\r")).as_py():
            return None  # a bare carriage return: the exact path decides
    if b'"' in chunk:
        if not pc.all(pc.match_substring_regex(lines, _record_pattern(fields))).as_py():
            return None
    elif chunk.translate(None, _NOT_SEPARATOR) != _separators(fields, len(lines), chunk):
        return None
    ones = pa.repeat(pa.scalar(1, pa.int64()), len(lines))
    numbers = pc.add(pc.cumulative_sum(ones), first_line - 1)
    return Records(lines=numbers, raw=lines)


def _parse_fast(chunk: bytes, first_line: int, fields: int, final: bool) -> Records | None:
    """Arrow's parse of a block, or None when it cannot be trusted for this block."""
    if chunk.count(b'"') % 2:
        return None  # an open quote: only the exact path can tell which record broke
    invalid_rows = 0

    def on_invalid(_row: object) -> str:
        nonlocal invalid_rows
        invalid_rows += 1
        return "skip"

    names = [f"c{index}" for index in range(fields)]
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(chunk),
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(chunk) + 1
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None  # typically invalid UTF-8 in some field: the exact path names the record
    if invalid_rows or table.num_rows == 0:
        return None
    table = table.combine_chunks()
    columns = [table.column(index).chunk(0) for index in range(fields)]
    newlines = pc.count_substring(columns[0], "\n")
    for column in columns[1:]:
        newlines = pc.add(newlines, pc.count_substring(column, "\n"))
    steps = pc.add(pc.cast(newlines, pa.int64()), 1)
    ends = pc.cumulative_sum(steps)
    physical = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    if ends[-1].as_py() != physical:
        return None  # e.g. a bare CR ended a row: only the exact path numbers that right
    lines = pc.add(pc.subtract(ends, steps), first_line)
    records = Records(lines=lines, columns=columns)
    if final:
        _reject_unterminated_tail(records, chunk, first_line + physical)
    return records


def _reject_unterminated_tail(records: Records, chunk: bytes, end_line: int) -> None:
    """Move the file's last record to the rejects when a quote in it never closed."""
    last_line = records.lines[-1].as_py()
    start = len(chunk) - 1 if chunk.endswith(b"\n") else len(chunk)
    for _ in range(end_line - last_line):
        start = chunk.rfind(b"\n", 0, start)
    raw = chunk[start + 1 :]
    if ends_inside_quotes(raw) and records.columns is not None:
        keep = records.num_rows - 1
        records.columns = [column.slice(0, keep) for column in records.columns]
        records.lines = records.lines.slice(0, keep)
        records.rejects.append(Reject(last_line, UNTERMINATED_QUOTE, escape_raw(raw)))


def _has_blank_line(chunk: bytes) -> bool:
    return (
        chunk.startswith((b"\n", b"\r\n"))
        or b"\n\n" in chunk
        or b"\n\r\n" in chunk
        or chunk.endswith(b"\n\r")
    )


def _last_record_end(buf: bytes) -> int:
    """Index just past the last newline that ends a record (quotes balanced), or -1."""
    end = buf.rfind(b"\n")
    if end < 0:
        return -1
    if b'"' not in buf:
        return end + 1
    odd = buf.count(b'"', 0, end) % 2
    while odd:
        previous = buf.rfind(b"\n", 0, end)
        if previous < 0:
            return -1
        odd ^= buf.count(b'"', previous, end) % 2
        end = previous
    return end + 1


def ends_inside_quotes(record: bytes) -> bool:
    """True when a quoted field of this record is still open at its end (RFC 4180 rules)."""
    start, unquoted, quoted, quote_in_quoted = 0, 1, 2, 3
    state = start
    for byte in record:
        if state == quoted:
            if byte == _QUOTE:
                state = quote_in_quoted
        elif state == quote_in_quoted:
            # "" is an escaped quote; anything else closed the field.
            state = (
                quoted
                if byte == _QUOTE
                else start
                if byte == _COMMA or byte in _NEWLINES
                else unquoted
            )
        elif byte == _COMMA or byte in _NEWLINES:
            state = start
        elif state == start and byte == _QUOTE:
            state = quoted
        else:
            state = unquoted
    return state == quoted


def escape_raw(raw: bytes) -> str:
    """A record's raw text fit for a text column: bad bytes and NUL escaped, terminator dropped."""
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
