"""Patient master: a nightly CSV snapshot of every active patient, one file per day.

Rows land in `raw_patients.patients` exactly as received (every field text), with
the snapshot's date taken from the file name (`_snapshot_date`), their line and
their file's ledger key (`_source_file_id`: name, SHA-256, load id and ingestion time are
in the ledger); dbt builds the SCD2 history from successive snapshots.
There is no incremental cursor: which files are new is decided by content hash
against the file ledger (`carehouse.ingest`), which a modification time or a
file name cannot fool.
"""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from dlt_sources._common.ahead import read_ahead
from dlt_sources._common.parts import PartWriter, file_import
from dlt_sources.files import FileBatch
from dlt_sources.patients.helpers import snapshot_blocks
from dlt_sources.patients.settings import (
    EXPECTED_COLUMNS,
    LAYOUT,
    PART_ROWS,
    PRIMARY_KEY,
    SCHEMA_CONTRACT,
    SOURCE,
    TABLE,
)


@dlt.source(name=SOURCE, max_table_nesting=0, schema_contract=SCHEMA_CONTRACT)
def patients(batch: FileBatch) -> DltResource:
    """The patient snapshot files of one load; what became of each record is noted in `batch`."""
    return patient_rows(batch)


@dlt.resource(
    name=TABLE,
    table_name=TABLE,
    write_disposition="append",
    primary_key=PRIMARY_KEY,
    columns=LAYOUT.column_hints(LAYOUT.part_columns(EXPECTED_COLUMNS)),
)
def patient_rows(batch: FileBatch) -> Iterator[DataItemWithMeta]:
    """Every loadable record of `batch`, as CSV parts that dlt imports and COPYs unchanged."""
    empty = LAYOUT.part_columns(EXPECTED_COLUMNS)
    with PartWriter(batch.work_dir, empty, PART_ROWS) as parts:
        # Files are read ahead in parallel; their blocks still come in file order.
        for block in read_ahead(batch.files, lambda file: snapshot_blocks(file, batch)):
            for part in parts.write(block):
                yield file_import(part, LAYOUT.column_hints)
        for part in parts.finish():
            yield file_import(part, LAYOUT.column_hints)
    batch.close_spool()
