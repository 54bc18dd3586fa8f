"""One landed file's reading: its runs counted, rendered as CSV blocks, its hash checked.

A `FileReader` is shared by the NDJSON and the Bundle paths. Rendering may run
on any of the parse threads; counting is done in file order by the one thread
that yields the blocks, so that the counts and rejects match the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from dlt_sources._common.columns import (
    DLT_ID,
    DLT_LOAD_ID,
    INGESTED_AT,
    METADATA_COLUMNS,
    SOURCE_FILE,
    SOURCE_HASH,
    SOURCE_LINE,
)
from dlt_sources._common.csvfile import escape_raw
from dlt_sources._common.jsonlines import LineBlock, LongLine
from dlt_sources._common.parts import Block, csv_rows
from dlt_sources.files import FileBatch, FileChangedError, LandedFile, Reject
from dlt_sources.labs.blocks import parse_block
from dlt_sources.labs.parsed import Parsed, RowBuffer
from dlt_sources.labs.settings import (
    COLUMNS,
    EXTRACTED_COLUMNS,
    NEW_FIELD_PREFIX,
    RECORD_TOO_LARGE,
    RESOURCE,
)

log = logging.getLogger(__name__)


@dataclass
class FileReader:
    """What one file's reading has found so far, and how its rows are rendered."""

    file: LandedFile
    batch: FileBatch
    load_id: str
    new_fields: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        ingested_at = self.batch.ingested_at.isoformat(timespec="seconds")
        self.constants = {
            SOURCE_FILE: pa.scalar(self.file.name, pa.string()),
            SOURCE_HASH: pa.scalar(self.file.sha256, pa.string()),
            INGESTED_AT: pa.scalar(ingested_at, pa.string()),
            DLT_LOAD_ID: pa.scalar(self.load_id, pa.string()),
        }
        self.id_prefix = pa.scalar(f"{self.file.sha256[:16]}.", pa.string())
        self.empty = pa.scalar("", pa.string())

    def account(self, parsed: Parsed) -> Block | None:
        """Count a run's rows and rejects; its loadable rows as a CSV block, if any."""
        self.count(parsed)
        return self.render(parsed)

    def count(self, parsed: Parsed) -> None:
        """Count a run's rows, rejects, blank lines and new fields (in file order)."""
        self.batch.count(self.file, parsed.rows.num_rows, parsed.rejects)
        self.batch.outcome(self.file).blank_lines += parsed.blank_lines
        self.new_fields |= parsed.new_fields

    def render(self, parsed: Parsed) -> Block | None:
        """A run's loadable rows as a CSV block with their metadata (any thread)."""
        rows = parsed.rows
        if not rows.num_rows:
            return None
        lines = rows.column(SOURCE_LINE)
        metadata = {name: pa.repeat(value, rows.num_rows) for name, value in self.constants.items()}
        metadata[SOURCE_LINE] = lines
        metadata[DLT_ID] = pc.binary_join_element_wise(
            self.id_prefix, pc.cast(lines, pa.string()), self.empty
        )
        table = pa.RecordBatch.from_arrays(
            [
                *(rows.column(name) for name in (*EXTRACTED_COLUMNS, RESOURCE)),
                *(metadata[name] for name in METADATA_COLUMNS),
            ],
            names=list(COLUMNS),
        )
        return Block(COLUMNS, csv_rows(table), rows.num_rows)

    def work(self, item: LineBlock | LongLine) -> list[tuple[Parsed, Block | None]]:
        """Parse and render a block of lines (any thread); count the result in file order."""
        if isinstance(item, LongLine):
            note = f" [record of {item.size:,} bytes cut to its first {len(item.head):,}]"
            reject = Reject(item.line, RECORD_TOO_LARGE, escape_raw(item.head) + note)
            return [(Parsed(RowBuffer().take(), [reject]), None)]
        return [(parsed, self.render(parsed)) for parsed in parse_block(item.data, item.first_line)]

    def reject(self, line: int, reason: str, raw: str) -> None:
        """Count one record refused outside a run (a Bundle entry, a break in the JSON).

        Args:
            line: its line, or its position in `Bundle.entry`.
            reason: the quarantine reason.
            raw: the record as quarantined, already escaped.
        """
        self.batch.count(self.file, 0, [Reject(line, reason, raw)])

    def finish(self, sha256: str) -> None:
        """Record the new fields; fail when the file changed since it was fingerprinted.

        Args:
            sha256: the hash of the bytes actually read, once the file is read to its end.

        Raises:
            FileChangedError: the bytes read are not those the ledger fingerprinted.
        """
        if sha256 != self.file.sha256:
            # Rows would carry a hash that is not their content's: fail, the load rolls back.
            raise FileChangedError(
                f"{self.file.name} changed while it was loaded (still being written?);"
                " load it again"
            )
        new = tuple(sorted(f"{NEW_FIELD_PREFIX}{name}" for name in self.new_fields))
        self.batch.outcome(self.file).new_columns = new
        if new:
            log.warning("%s: new Observation fields kept in resource: %s", self.file.name,
                        ", ".join(new))  # fmt: skip
