"""Load metadata columns raw rows of a landed file carry, and their dlt hints.

Two contracts:

- CSV sources (admissions, patients) keep per row only what identifies the row:
  its physical line and a compact key of its file (`_source_file_id`). Everything that
  is per file (name, content hash, load id, ingestion time) is in the file
  ledger (`carehouse.ingest.ledger`), one join away. Narrow rows are what let
  the load keep pace with a plain COPY.
- Labs rows carry the full per-row metadata (`METADATA_COLUMNS`).
"""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
SOURCE_HASH = "_source_hash"
INGESTED_AT = "_ingested_at"
DLT_LOAD_ID = "_dlt_load_id"
DLT_ID = "_dlt_id"
FILE_ID = "_source_file_id"

# In this order, after a source's own columns (labs).
METADATA_COLUMNS: tuple[str, ...] = (
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_HASH,
    INGESTED_AT,
    DLT_LOAD_ID,
    DLT_ID,
)

# A record is identified by the content of its file and where it starts in it.
PRIMARY_KEY: tuple[str, str] = (SOURCE_HASH, SOURCE_LINE)

# In this order, after a CSV source's own columns and constants.
FILE_ROW_COLUMNS: tuple[str, ...] = (SOURCE_LINE, FILE_ID)

# The same identity for CSV rows: the ledger's file_id stands for the file's content.
FILE_ROW_KEY: tuple[str, str] = (FILE_ID, SOURCE_LINE)

# Source fields stay text, nullable, as received; dlt maps text to Postgres varchar
# without a length, which behaves exactly like text.
TEXT_COLUMN: TColumnSchema = {"data_type": "text", "nullable": True}

METADATA_HINTS: dict[str, TColumnSchema] = {
    SOURCE_FILE: {"data_type": "text", "nullable": False},
    SOURCE_LINE: {"data_type": "bigint", "nullable": False},
    SOURCE_HASH: {"data_type": "text", "nullable": False},
    INGESTED_AT: {"data_type": "timestamp", "nullable": False},
    DLT_LOAD_ID: {"data_type": "text", "nullable": False},
    DLT_ID: {"data_type": "text", "nullable": False, "unique": True},
}

FILE_ROW_HINTS: dict[str, TColumnSchema] = {
    SOURCE_LINE: {"data_type": "bigint", "nullable": False},
    FILE_ID: {"data_type": "bigint", "nullable": False},
}
