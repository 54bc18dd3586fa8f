"""Lab results: FHIR R4 Observation resources as NDJSON (FHIR Bulk Data $export) or Bundles.

Each Observation lands in `raw_labs.observations` whole (`resource`, jsonb, as
received) beside columns taken out of it with fixed types (text, numeric), and
its file, line and the file's SHA-256. A record that cannot be loaded, including
one whose extracted fields have another JSON type than FHIR's, is quarantined
with a reason; it never becomes a dlt variant column. There is no incremental
cursor: which files are new is decided by content hash against the file ledger
(`carehouse.ingest`).
"""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from dlt_sources._common.parts import PartWriter, file_import
from dlt_sources.files import FileBatch
from dlt_sources.labs.helpers import column_hints, observation_blocks
from dlt_sources.labs.settings import (
    COLUMN_HINTS,
    COLUMNS,
    PART_ROWS,
    PRIMARY_KEY,
    SCHEMA_CONTRACT,
    SOURCE,
    TABLE,
)


@dlt.source(name=SOURCE, max_table_nesting=0, schema_contract=SCHEMA_CONTRACT)
def labs(batch: FileBatch) -> DltResource:
    """The lab files of one load; what became of each record is noted in `batch`."""
    return observations(batch)


@dlt.resource(
    name=TABLE,
    table_name=TABLE,
    write_disposition="append",
    primary_key=PRIMARY_KEY,
    columns=COLUMN_HINTS,
)
def observations(batch: FileBatch) -> Iterator[DataItemWithMeta]:
    """Every loadable Observation of `batch`, as CSV parts that dlt imports and COPYs."""
    load_id: str = dlt.current.load_package_state()["load_id"]
    with PartWriter(batch.work_dir, COLUMNS, PART_ROWS) as parts:
        for block in observation_blocks(batch.files, batch, load_id):
            for part in parts.write(block):
                yield file_import(part, column_hints)
        for part in parts.finish():
            yield file_import(part, column_hints)
    batch.close_spool()
