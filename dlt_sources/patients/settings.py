"""Constants of the patient master source."""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema, TSchemaContractDict

from dlt_sources._common.columns import FILE_ID, FILE_ROW_KEY
from dlt_sources._common.csvsource import CsvLayout

SOURCE = "patients"
DATASET = "raw_patients"
TABLE = "patients"
QUARANTINE_TABLE = "patients_file_rejects"  # in the `quarantine` schema
LANDING_SUBDIR = "patients"
FILE_GLOB = "*.csv"

# The patient master snapshot's header, in order.
EXPECTED_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "address_line",
    "postal_code",
    "insurer_id",
    "plan",
    "updated_at",
)

# The day a snapshot describes, from its file name (`patients_YYYY-MM-DD.csv`): dbt builds
# the SCD2 history from it, so a file without one cannot be placed in time.
SNAPSHOT_DATE = "_snapshot_date"
NO_SNAPSHOT_DATE = "no_snapshot_date"  # quarantine reason of every record of such a file

LAYOUT = CsvLayout(
    expected_columns=EXPECTED_COLUMNS,
    constant_columns=(SNAPSHOT_DATE,),
    constant_hints={SNAPSHOT_DATE: TColumnSchema(data_type="date", nullable=False)},
)
PRIMARY_KEY: tuple[str, str] = FILE_ROW_KEY
# The raw column holding the file ledger's file_id: a row's file is one join away.
FILE_KEY = FILE_ID

# New columns may appear (a master gaining a field); a column changing type must
# fail the load instead of creating a variant column.
SCHEMA_CONTRACT: TSchemaContractDict = {
    "tables": "evolve",
    "columns": "evolve",
    "data_type": "freeze",
}

# Rows per CSV part handed to dlt: parts load in parallel, each in one COPY.
PART_ROWS = 250_000
