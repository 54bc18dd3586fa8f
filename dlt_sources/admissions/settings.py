"""Constants of the admissions source."""

from __future__ import annotations

from dlt.common.schema.typing import TSchemaContractDict

from carehouse.ingest.columns import FILE_ROW_KEY
from carehouse.ingest.csvsource import CsvLayout

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

# New tables and columns may appear (an extract gaining a column); a column changing
# type must fail the load instead of creating a variant column.
SCHEMA_CONTRACT: TSchemaContractDict = {
    "tables": "evolve",
    "columns": "evolve",
    "data_type": "freeze",
}

# Rows per CSV part handed to dlt: parts load in parallel, each in one COPY.
PART_ROWS = 250_000
