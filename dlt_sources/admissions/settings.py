"""Constants of the admissions source."""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema, TSchemaContractDict

SOURCE = "admissions"
DATASET = "raw_admissions"
TABLE = "admissions"
QUARANTINE_TABLE = "admissions_file_rejects"  # in the `quarantine` schema
LANDING_SUBDIR = "admissions"
FILE_GLOB = "*.csv"

# The ADT extract's header, in order.
EXPECTED_COLUMNS: tuple[str, ...] = (
    "admission_id",
    "patient_id",
    "admitted_at",
    "discharged_at",
    "department",
    "admission_type",
    "discharge_disposition",
    "primary_diagnosis_code",
    "total_charges",
    "insurer_id",
)

# Load metadata added to every row; a header may not use these names.
SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
SOURCE_HASH = "_source_hash"
INGESTED_AT = "_ingested_at"
DLT_LOAD_ID = "_dlt_load_id"
DLT_ID = "_dlt_id"
METADATA_COLUMNS: tuple[str, ...] = (
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_HASH,
    INGESTED_AT,
    DLT_LOAD_ID,
    DLT_ID,
)
PRIMARY_KEY: tuple[str, str] = (SOURCE_HASH, SOURCE_LINE)

# dlt column hints. Source columns stay text, nullable, as received; dlt maps text to
# Postgres varchar without a length, which behaves exactly like text.
TEXT_COLUMN: TColumnSchema = {"data_type": "text", "nullable": True}
METADATA_HINTS: dict[str, TColumnSchema] = {
    SOURCE_FILE: {"data_type": "text", "nullable": False},
    SOURCE_LINE: {"data_type": "bigint", "nullable": False},
    SOURCE_HASH: {"data_type": "text", "nullable": False},
    INGESTED_AT: {"data_type": "timestamp", "nullable": False},
    DLT_LOAD_ID: {"data_type": "text", "nullable": False},
    DLT_ID: {"data_type": "text", "nullable": False, "unique": True},
}

# New tables and columns may appear (an extract gaining a column); a column changing
# type must fail the load instead of creating a variant column.
SCHEMA_CONTRACT: TSchemaContractDict = {
    "tables": "evolve",
    "columns": "evolve",
    "data_type": "freeze",
}

# Rows per CSV file handed to dlt: several files load in parallel, each in one COPY.
PART_ROWS = 250_000

# Quarantine reasons for whole files whose header cannot be mapped.
MISSING_COLUMNS = "missing_columns"
INVALID_HEADER = "invalid_header"
