"""Admissions: the hospital's nightly ADT extract, CSV files dropped in a landing folder.

Rows land in `raw_admissions.admissions` exactly as received (every field text)
with their file, line and the file's SHA-256. There is no incremental cursor:
which files are new is decided by content hash against the file ledger
(`carehouse.ingest`), which a modification time or a file name cannot fool.
"""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from carehouse.ingest.files import FileBatch
from dlt_sources.admissions.helpers import PartWriter, column_hints, csv_blocks, file_import
from dlt_sources.admissions.settings import (
    EXPECTED_COLUMNS,
    PRIMARY_KEY,
    SCHEMA_CONTRACT,
    SOURCE,
    TABLE,
)


@dlt.source(name=SOURCE, max_table_nesting=0, schema_contract=SCHEMA_CONTRACT)
def admissions(batch: FileBatch) -> DltResource:
    """The admissions files of one load; what became of each record is noted in `batch`."""
    return admission_rows(batch)


@dlt.resource(
    name=TABLE,
    table_name=TABLE,
    write_disposition="append",
    primary_key=PRIMARY_KEY,
    columns=column_hints(EXPECTED_COLUMNS),
)
def admission_rows(batch: FileBatch) -> Iterator[DataItemWithMeta]:
    """Every loadable record of `batch`, as CSV parts that dlt imports and COPYs unchanged.

    The parts already carry `_dlt_load_id` and `_dlt_id`: imported files skip
    dlt's normalizer, which would otherwise re-read and re-write every row.
    """
    load_id: str = dlt.current.load_package_state()["load_id"]
    with PartWriter(batch.work_dir) as parts:
        for file in batch.files:
            for block in csv_blocks(file, batch, load_id):
                for part in parts.write(block):
                    yield file_import(part)
        for part in parts.finish():
            yield file_import(part)
    batch.close_spool()
