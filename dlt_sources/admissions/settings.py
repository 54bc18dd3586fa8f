"""Constants of the admissions source."""

from __future__ import annotations

from dlt.common.schema.typing import TSchemaContractDict

from dlt_sources._common.columns import FILE_ID, FILE_ROW_KEY
from dlt_sources._common.csvsource import CsvLayout

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

LAYOUT = CsvLayout(expected_columns=EXPECTED_COLUMNS)
PRIMARY_KEY: tuple[str, str] = FILE_ROW_KEY
# The raw column holding the file ledger's file_id: a row's file is one join away.
FILE_KEY = FILE_ID

# New tables and columns may appear (an extract gaining a column); a column changing
# type must fail the load instead of creating a variant column.
SCHEMA_CONTRACT: TSchemaContractDict = {
    "tables": "evolve",
    "columns": "evolve",
    "data_type": "freeze",
}

# Rows per CSV part handed to dlt: parts load in parallel, each in one COPY.
PART_ROWS = 250_000
