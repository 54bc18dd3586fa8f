"""Admissions files read into the raw table's shape, and written as CSV parts for dlt."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema
from dlt.extract.items import DataItemWithMeta

from carehouse.ingest.csvfile import CsvFile, Header, Records
from carehouse.ingest.files import FileBatch, FileChangedError, LandedFile
from dlt_sources.admissions.settings import (
    DLT_ID,
    DLT_LOAD_ID,
    EXPECTED_COLUMNS,
    INGESTED_AT,
    INVALID_HEADER,
    METADATA_COLUMNS,
    METADATA_HINTS,
    MISSING_COLUMNS,
    PART_ROWS,
    SOURCE_FILE,
    SOURCE_HASH,
    SOURCE_LINE,
    TEXT_COLUMN,
)

log = logging.getLogger(__name__)

# dlt's default naming: what a header name becomes as a column.
NAMING = NamingConvention()


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's header maps onto raw columns, in the file's own order."""

    names: tuple[str, ...] = ()  # dlt-normalized header names
    new_columns: tuple[str, ...] = ()  # those the extract did not have before
    rejected: str | None = None  # quarantine reason when the file cannot be mapped
    detail: str | None = None


def plan_columns(header: Header) -> ColumnPlan:
    """Map a header: new columns are kept; missing or unusable names reject the file."""
    if header.error:
        return ColumnPlan(rejected=INVALID_HEADER, detail=header.error)
    names = [NAMING.normalize_identifier(name) if name.strip() else "" for name in header.names]
    # Missing columns first: a file without a header line has data there, and only the
    # expected names may appear in a message (data must not reach the logs).
    missing = [name for name in EXPECTED_COLUMNS if name not in names]
    if missing:
        return ColumnPlan(rejected=MISSING_COLUMNS, detail=f"missing columns: {', '.join(missing)}")
    if "" in names:
        return ColumnPlan(rejected=INVALID_HEADER, detail="the header has a blank column name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        detail = f"the header repeats columns: {', '.join(duplicates)}"
        return ColumnPlan(rejected=INVALID_HEADER, detail=detail)
    reserved = sorted(set(names) & set(METADATA_COLUMNS))
    if reserved:
        detail = f"the header uses reserved names: {', '.join(reserved)}"
        return ColumnPlan(rejected=INVALID_HEADER, detail=detail)
    new = tuple(name for name in names if name not in EXPECTED_COLUMNS)
    return ColumnPlan(names=tuple(names), new_columns=new)


def column_hints(data_columns: tuple[str, ...]) -> dict[str, TColumnSchema]:
    """The dlt column hints of a part with these source columns."""
    hints = {name: TEXT_COLUMN.copy() for name in data_columns}
    hints.update({name: hint.copy() for name, hint in METADATA_HINTS.items()})
    return hints


@dataclass(frozen=True)
class Block:
    """Rows of one file rendered as CSV lines (metadata included), ready to append to a part."""

    data_columns: tuple[str, ...]
    data: pa.Buffer
    rows: int


def csv_blocks(file: LandedFile, batch: FileBatch, load_id: str) -> Iterator[Block]:
    """One file's loadable rows as CSV blocks; counts and rejects go to `batch`."""
    outcome = batch.outcome(file)
    with CsvFile(file.path) as csv_file:
        if csv_file.header is None:
            return  # an empty file: no header, no records
        plan = plan_columns(csv_file.header)
        if plan.rejected:
            outcome.rejected = f"{plan.rejected}: {plan.detail}"
            for records in csv_file.records(reject_all=plan.rejected):
                batch.count(file, 0, records.rejects)
            outcome.blank_lines = csv_file.blank_lines
            _check_unchanged(csv_file, file)
            log.warning(
                "%s: %s; its %d records are quarantined", file.name, plan.detail, outcome.received
            )
            return
        outcome.new_columns = plan.new_columns
        if plan.new_columns:
            log.warning("%s: new columns kept: %s", file.name, ", ".join(plan.new_columns))
        renderer = _Renderer(file, batch, load_id, plan.names)
        for records in csv_file.records():
            batch.count(file, records.num_rows, records.rejects)
            if records.num_rows:
                yield Block(plan.names, renderer.render(records), records.num_rows)
        outcome.blank_lines = csv_file.blank_lines
        _check_unchanged(csv_file, file)


def _check_unchanged(csv_file: CsvFile, file: LandedFile) -> None:
    # Rows would carry a hash that is not their content's: fail, and the load rolls back.
    if csv_file.sha256() != file.sha256:
        raise FileChangedError(
            f"{file.name} changed while it was loaded (still being written?); load it again"
        )


def _quoted(value: str) -> str:
    """A value as a CSV field, quoted only when it has to be."""
    if any(char in value for char in ',"\r\n') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


class _Renderer:
    """Appends one file's metadata columns to its records, as CSV."""

    def __init__(
        self, file: LandedFile, batch: FileBatch, load_id: str, names: tuple[str, ...]
    ) -> None:
        self.names = names
        ingested_at = batch.ingested_at.isoformat(timespec="seconds")
        # Between a record and its line number, and between the line number and the same
        # number again as the end of `_dlt_id`: row ids are the file's hash prefix and the
        # line (64 bits of hash keep them unique across files), stable, and need no
        # Python call per row, unlike dlt's random ids.
        self.before_line = pa.scalar(f",{_quoted(file.name)},", pa.string())
        self.before_id = pa.scalar(
            f",{file.sha256},{ingested_at},{load_id},{file.sha256[:16]}.", pa.string()
        )
        self.end = pa.scalar("\n", pa.string())
        self.empty = pa.scalar("", pa.string())
        self.constants = {
            SOURCE_FILE: pa.scalar(file.name, pa.string()),
            SOURCE_HASH: pa.scalar(file.sha256, pa.string()),
            INGESTED_AT: pa.scalar(ingested_at, pa.string()),
            DLT_LOAD_ID: pa.scalar(load_id, pa.string()),
        }
        self.id_prefix = pa.scalar(f"{file.sha256[:16]}.", pa.string())

    def render(self, records: Records) -> pa.Buffer:
        """The records as CSV lines in the part's column order."""
        numbers = pc.cast(records.lines, pa.string())
        if records.raw is not None:
            # Strict one-line records: COPY reads them as they came; append the metadata.
            lines = pc.binary_join_element_wise(
                records.raw,
                self.before_line,
                numbers,
                self.before_id,
                numbers,
                self.end,
                self.empty,
            )
            offsets = lines.buffers()[1]
            first, last = (
                struct.unpack_from("<i", offsets, 0)[0],
                struct.unpack_from("<i", offsets, 4 * len(lines))[0],
            )
            return lines.buffers()[2].slice(first, last - first)
        assert records.columns is not None
        rows = records.num_rows
        metadata = {name: pa.repeat(value, rows) for name, value in self.constants.items()}
        metadata[SOURCE_LINE] = records.lines
        metadata[DLT_ID] = pc.binary_join_element_wise(self.id_prefix, numbers, self.empty)
        table = pa.RecordBatch.from_arrays(
            [*records.columns, *(metadata[name] for name in METADATA_COLUMNS)],
            names=[*self.names, *METADATA_COLUMNS],
        )
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue()


@dataclass(frozen=True)
class Part:
    """A finished CSV file for dlt to import."""

    path: Path
    rows: int
    data_columns: tuple[str, ...]


class PartWriter:
    """Appends blocks to CSV parts of at most `part_rows` rows, one column set per part.

    Writing is the slowest step of the extract on a page cache: a background
    thread writes one block while the next is read (at most two in memory).
    """

    def __init__(self, work_dir: Path, part_rows: int = PART_ROWS) -> None:
        self.work_dir = work_dir
        self.part_rows = part_rows
        self._count = 0
        self._stream: BinaryIO | None = None
        self._path = work_dir
        self._rows = 0
        self._columns: tuple[str, ...] = ()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="part-writer")
        self._pending: Future[int] | None = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._drain()
        finally:
            if self._stream is not None:
                self._stream.close()
            self._writer.shutdown()

    def write(self, block: Block) -> Iterator[Part]:
        """Append a block, yielding the part it closed, if any."""
        if self._stream is not None and (
            block.data_columns != self._columns or self._rows + block.rows > self.part_rows
        ):
            yield self._close()
        if self._stream is None:
            self._open(block.data_columns)
        assert self._stream is not None
        self._drain()
        self._pending = self._writer.submit(self._stream.write, block.data)
        self._rows += block.rows

    def finish(self) -> Iterator[Part]:
        """Close the open part; when nothing was written, an empty one, so the table exists."""
        if self._stream is None and self._count == 0:
            self._open(EXPECTED_COLUMNS)
        if self._stream is not None:
            yield self._close()

    def _drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises a failed write here, in the caller's thread

    def _open(self, data_columns: tuple[str, ...]) -> None:
        self._count += 1
        self._path = self.work_dir / f"part-{self._count:05d}.csv"
        self._columns = data_columns
        self._rows = 0
        self._stream = self._path.open("wb")
        header = ",".join(_quoted(name) for name in (*data_columns, *METADATA_COLUMNS))
        self._stream.write(f"{header}\n".encode())

    def _close(self) -> Part:
        assert self._stream is not None
        self._drain()
        self._stream.close()
        self._stream = None
        return Part(self._path, self._rows, self._columns)


def file_import(part: Part) -> DataItemWithMeta:
    """A part as a dlt file import, with the column hints dlt cannot read from a CSV."""
    hints = dlt.mark.make_hints(columns=column_hints(part.data_columns))
    return dlt.mark.with_file_import(str(part.path), "csv", part.rows, hints=hints)
