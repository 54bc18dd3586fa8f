"""Landed CSV files read into a raw table's shape: header mapping, row keys, CSV blocks.

Source-agnostic: a `CsvLayout` names the columns a file must have and any
per-file constant columns (e.g. a snapshot date taken from the file name)
that go before the row key (`_source_line`, `_source_file_id`). Everything else about
a file (name, hash, load id, ingestion time) is in its ledger row.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema

from dlt_sources._common.columns import (
    DLT_ID,
    DLT_LOAD_ID,
    FILE_ID,
    FILE_ROW_COLUMNS,
    FILE_ROW_HINTS,
    SOURCE_LINE,
    TEXT_COLUMN,
)
from dlt_sources._common.csvfile import CsvFile, Header, Records
from dlt_sources._common.parts import Block, csv_field, csv_rows
from dlt_sources.files import FileBatch, FileChangedError, LandedFile

log = logging.getLogger(__name__)

# dlt's default naming: what a header name becomes as a column.
NAMING = NamingConvention()

# Quarantine reasons for whole files whose header cannot be mapped.
MISSING_COLUMNS = "missing_columns"
INVALID_HEADER = "invalid_header"


@dataclass(frozen=True)
class CsvLayout:
    """The columns of a CSV source's raw table."""

    expected_columns: tuple[str, ...]  # a file must have all of them, in any order
    constant_columns: tuple[str, ...] = ()  # one value per file, before the row key
    constant_hints: Mapping[str, TColumnSchema] | None = None

    @property
    def reserved(self) -> tuple[str, ...]:
        """Names a header may not use (dlt's own columns included, though raw has none)."""
        return (*self.constant_columns, *FILE_ROW_COLUMNS, DLT_LOAD_ID, DLT_ID)

    def column_hints(self, columns: tuple[str, ...]) -> dict[str, TColumnSchema]:
        """The dlt hints of a part with these columns: source columns text, the rest typed."""
        typed: dict[str, TColumnSchema] = {**(self.constant_hints or {}), **FILE_ROW_HINTS}
        return {name: (typed.get(name) or TEXT_COLUMN).copy() for name in columns}

    def part_columns(self, data_columns: tuple[str, ...]) -> tuple[str, ...]:
        """A part's columns: the file's own, then the constants, then the row key."""
        return (*data_columns, *self.constant_columns, *FILE_ROW_COLUMNS)


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's header maps onto raw columns, in the file's own order."""

    names: tuple[str, ...] = ()  # dlt-normalized header names
    new_columns: tuple[str, ...] = ()  # those the layout does not expect
    rejected: str | None = None  # quarantine reason when the file cannot be mapped
    detail: str | None = None


def plan_columns(header: Header, layout: CsvLayout) -> ColumnPlan:
    """Map a header: new columns are kept; missing or unusable names reject the file."""
    if header.error:
        return ColumnPlan(rejected=INVALID_HEADER, detail=header.error)
    names = [NAMING.normalize_identifier(name) if name.strip() else "" for name in header.names]
    # Missing columns first: a file without a header line has data there, and only the
    # expected names may appear in a message (data must not reach the logs).
    missing = [name for name in layout.expected_columns if name not in names]
    if missing:
        return ColumnPlan(rejected=MISSING_COLUMNS, detail=f"missing columns: {', '.join(missing)}")
    if "" in names:
        return ColumnPlan(rejected=INVALID_HEADER, detail="the header has a blank column name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        detail = f"the header repeats columns: {', '.join(duplicates)}"
        return ColumnPlan(rejected=INVALID_HEADER, detail=detail)
    reserved = sorted(set(names) & set(layout.reserved))
    if reserved:
        detail = f"the header uses reserved names: {', '.join(reserved)}"
        return ColumnPlan(rejected=INVALID_HEADER, detail=detail)
    new = tuple(name for name in names if name not in layout.expected_columns)
    return ColumnPlan(names=tuple(names), new_columns=new)


def reject_file(file: LandedFile, batch: FileBatch, reason: str, detail: str) -> None:
    """Quarantine every record of a file for one reason; the summary names the file."""
    with CsvFile(file.path) as csv_file:
        _reject_records(csv_file, file, batch, reason, detail)


def _reject_records(
    csv_file: CsvFile, file: LandedFile, batch: FileBatch, reason: str, detail: str
) -> None:
    outcome = batch.outcome(file)
    outcome.rejected = f"{reason}: {detail}"
    if csv_file.header is not None:
        for records in csv_file.records(reject_all=reason):
            batch.count(file, 0, records.rejects)
        outcome.blank_lines = csv_file.blank_lines
    _check_unchanged(csv_file, file)
    log.warning("%s: %s; its %d records are quarantined", file.name, detail, outcome.received)


def csv_blocks(
    file: LandedFile,
    batch: FileBatch,
    layout: CsvLayout,
    constants: Mapping[str, str] | None = None,
) -> Iterator[Block]:
    """One file's loadable rows as CSV blocks; counts and rejects go to `batch`.

    `constants` holds the file's value of each of the layout's constant columns.
    """
    values = [(constants or {})[name] for name in layout.constant_columns]
    outcome = batch.outcome(file)
    with CsvFile(file.path) as csv_file:
        if csv_file.header is None:
            _check_unchanged(csv_file, file)
            return  # an empty file: no header, no records
        plan = plan_columns(csv_file.header, layout)
        if plan.rejected:
            _reject_records(csv_file, file, batch, plan.rejected, plan.detail or plan.rejected)
            return
        outcome.new_columns = plan.new_columns
        if plan.new_columns:
            log.warning("%s: new columns kept: %s", file.name, ", ".join(plan.new_columns))
        renderer = _Renderer(batch.file_id(file), plan.names, layout, values)
        columns = layout.part_columns(plan.names)
        for records in csv_file.records():
            batch.count(file, records.num_rows, records.rejects)
            if records.num_rows:
                yield Block(columns, renderer.render(records), records.num_rows)
        outcome.blank_lines = csv_file.blank_lines
        _check_unchanged(csv_file, file)


def _check_unchanged(csv_file: CsvFile, file: LandedFile) -> None:
    # The ledger would record a hash that is not the rows' content: fail, and the load
    # rolls back.
    if csv_file.sha256() != file.sha256:
        raise FileChangedError(
            f"{file.name} changed while it was loaded (still being written?); load it again"
        )


class _Renderer:
    """Appends one file's constant columns and row key to its records, as CSV."""

    def __init__(
        self, file_id: int, names: tuple[str, ...], layout: CsvLayout, values: list[str]
    ) -> None:
        self.names = names
        self.layout = layout
        # Around the line number, the only per-row value: no Python call per row.
        self.before_line = pa.scalar("," + "".join(csv_field(v) + "," for v in values))
        self.after_line = pa.scalar(f",{file_id}\n")
        self.empty = pa.scalar("")
        self.constants = {
            name: pa.scalar(value, pa.string())
            for name, value in zip(layout.constant_columns, values, strict=True)
        }
        self.file_id = pa.scalar(file_id, pa.int64())

    def render(self, records: Records) -> pa.Buffer:
        """The records as CSV lines in the part's column order."""
        if records.raw is not None:
            # Strict one-line records: COPY reads them as they came; append the row key.
            numbers = pc.cast(records.lines, pa.string())
            lines = pc.binary_join_element_wise(
                records.raw, self.before_line, numbers, self.after_line, self.empty
            )
            offsets = lines.buffers()[1]
            first, last = (
                struct.unpack_from("<i", offsets, 0)[0],
                struct.unpack_from("<i", offsets, 4 * len(lines))[0],
            )
            return lines.buffers()[2].slice(first, last - first)
        assert records.columns is not None
        rows = records.num_rows
        extra = {name: pa.repeat(value, rows) for name, value in self.constants.items()}
        extra[SOURCE_LINE] = records.lines
        extra[FILE_ID] = pa.repeat(self.file_id, rows)
        tail = (*self.layout.constant_columns, *FILE_ROW_COLUMNS)
        batch = pa.RecordBatch.from_arrays(
            [*records.columns, *(extra[name] for name in tail)], names=[*self.names, *tail]
        )
        return csv_rows(batch)
