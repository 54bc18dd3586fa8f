"""Admissions: the hospital's nightly ADT extract, CSV files dropped in a landing folder.

Rows land in `raw_admissions.admissions` exactly as received (every field text)
with their line and their file's ledger key (`_source_file_id`); the file's name, SHA-256,
load id and ingestion time are in the ledger row it references. There is no incremental cursor:
which files are new is decided by content hash against the file ledger
(`carehouse.ingest`), which a modification time or a file name cannot fool.
Reading and rendering are the shared CSV machinery (`dlt_sources._common.csvsource`,
`dlt_sources._common.parts`); this package only names the columns, so it has no
`helpers.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from dlt_sources._common.ahead import read_ahead
from dlt_sources._common.csvsource import csv_blocks
from dlt_sources._common.parts import PartWriter, file_import
from dlt_sources.admissions.settings import (
    EXPECTED_COLUMNS,
    LAYOUT,
    PART_ROWS,
    PRIMARY_KEY,
    SCHEMA_CONTRACT,
    SOURCE,
    TABLE,
)
from dlt_sources.files import FileBatch


@dlt.source(name=SOURCE, max_table_nesting=0, schema_contract=SCHEMA_CONTRACT)
def admissions(batch: FileBatch) -> DltResource:
    """The admissions files of one load; what became of each record is noted in `batch`."""
    return admission_rows(batch)


@dlt.resource(
    name=TABLE,
    table_name=TABLE,
    write_disposition="append",
    primary_key=PRIMARY_KEY,
    columns=LAYOUT.column_hints(LAYOUT.part_columns(EXPECTED_COLUMNS)),
)
def admission_rows(batch: FileBatch) -> Iterator[DataItemWithMeta]:
    """Every loadable record of `batch`, as CSV parts that dlt imports and COPYs unchanged.

    Imported files skip dlt's normalizer, which would otherwise re-read and re-write
    every row; each row's key (`_source_line`, `_source_file_id`) is rendered into the parts.
    """
    empty = LAYOUT.part_columns(EXPECTED_COLUMNS)
    with PartWriter(batch.work_dir, empty, PART_ROWS) as parts:
        # Files are read ahead in parallel; their blocks still come in file order.
        for block in read_ahead(batch.files, lambda file: csv_blocks(file, batch, LAYOUT)):
            for part in parts.write(block):
                yield file_import(part, LAYOUT.column_hints)
        for part in parts.finish():
            yield file_import(part, LAYOUT.column_hints)
    batch.close_spool()
