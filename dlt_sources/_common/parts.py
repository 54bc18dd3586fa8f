"""CSV part files handed to dlt as file imports: written in the background, COPYed unchanged.

A source renders its rows as CSV blocks with their metadata columns already
filled in (the CSV sources' row key; the labs' `_dlt_id` and `_dlt_load_id`),
so dlt skips its normalizer, which would otherwise re-read and re-write every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
from dlt.common.schema.typing import TColumnSchema
from dlt.extract.items import DataItemWithMeta

# Rows per part: several parts load in parallel, each in one COPY.
DEFAULT_PART_ROWS = 250_000


def csv_field(value: str) -> str:
    """A value as a CSV field, quoted only when it has to be."""
    if any(char in value for char in ',"\r\n') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_rows(batch: pa.RecordBatch) -> pa.Buffer:
    """A record batch as CSV lines without a header (empty strings load as NULL)."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(batch, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


@dataclass(frozen=True)
class Block:
    """Rows rendered as CSV lines in the order of `columns`, ready to append to a part."""

    columns: tuple[str, ...]
    data: pa.Buffer | bytes
    rows: int


@dataclass(frozen=True)
class Part:
    """A finished CSV file for dlt to import."""

    path: Path
    rows: int
    columns: tuple[str, ...]


class PartWriter:
    """Appends blocks to CSV parts of at most `part_rows` rows, one column set per part.

    Writing is the slowest step of an extract on a page cache: a background
    thread writes one block while the next is read (at most two in memory).
    """

    def __init__(
        self,
        work_dir: Path,
        empty_columns: tuple[str, ...],
        part_rows: int = DEFAULT_PART_ROWS,
    ) -> None:
        self.work_dir = work_dir
        self.empty_columns = empty_columns  # of the empty part written when nothing else was
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
            block.columns != self._columns or self._rows + block.rows > self.part_rows
        ):
            yield self._close()
        if self._stream is None:
            self._open(block.columns)
        assert self._stream is not None
        self._drain()
        self._pending = self._writer.submit(self._stream.write, block.data)
        self._rows += block.rows

    def finish(self) -> Iterator[Part]:
        """Close the open part; when nothing was written, an empty one, so the table exists."""
        if self._stream is None and self._count == 0:
            self._open(self.empty_columns)
        if self._stream is not None:
            yield self._close()

    def _drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises a failed write here, in the caller's thread

    def _open(self, columns: tuple[str, ...]) -> None:
        self._count += 1
        self._path = self.work_dir / f"part-{self._count:05d}.csv"
        self._columns = columns
        self._rows = 0
        self._stream = self._path.open("wb")
        self._stream.write((",".join(csv_field(name) for name in columns) + "\n").encode())

    def _close(self) -> Part:
        assert self._stream is not None
        self._drain()
        self._stream.close()
        self._stream = None
        return Part(self._path, self._rows, self._columns)


def file_import(
    part: Part, hints_for: Callable[[tuple[str, ...]], dict[str, TColumnSchema]]
) -> DataItemWithMeta:
    """A part as a dlt file import, with the column hints dlt cannot read from a CSV."""
    hints = dlt.mark.make_hints(columns=hints_for(part.columns))
    return dlt.mark.with_file_import(str(part.path), "csv", part.rows, hints=hints)
