"""Load metadata columns every raw row of a landed file carries, and their dlt hints."""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
SOURCE_HASH = "_source_hash"
INGESTED_AT = "_ingested_at"
DLT_LOAD_ID = "_dlt_load_id"
DLT_ID = "_dlt_id"

# In this order, after a source's own columns.
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
