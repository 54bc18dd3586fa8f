"""Constants of the lab results source (FHIR R4 Observation)."""

from __future__ import annotations

import os

from dlt.common.schema.typing import TColumnSchema, TSchemaContractDict

from dlt_sources._common.columns import METADATA_COLUMNS, METADATA_HINTS
from dlt_sources._common.columns import PRIMARY_KEY as FILE_RECORD_KEY

SOURCE = "labs"
DATASET = "raw_labs"
TABLE = "observations"
QUARANTINE_TABLE = "labs_file_rejects"  # in the `quarantine` schema
LANDING_SUBDIR = "labs"
# NDJSON as FHIR Bulk Data $export writes it, and FHIR Bundles.
NDJSON_GLOB = "*.ndjson"
BUNDLE_GLOB = "*.json"
FILE_GLOBS: tuple[str, ...] = (NDJSON_GLOB, BUNDLE_GLOB)

LOINC_SYSTEM = "http://loinc.org"

# Columns taken out of each Observation, in table order; every one text or numeric.
TEXT_FIELDS: tuple[str, ...] = (
    "observation_id",  # Observation.id
    "status",
    "category_code",  # category[0].coding[0].code
    "loinc_code",  # code.coding[system = LOINC].code
    "loinc_display",
    "patient_ref",  # subject.reference
    "encounter_ref",  # encounter.reference
    "effective_at",  # effectiveDateTime, effectivePeriod.start or effectiveInstant, as sent
    "issued",
    "value_type",  # see VALUE_TYPES
)
VALUE_NUMERIC = "value_numeric"  # valueQuantity.value or valueInteger
VALUE_UNIT = "value_unit"  # valueQuantity.code (UCUM), else valueQuantity.unit
VALUE_TEXT = "value_text"  # valueString, valueCodeableConcept text or code, ...
REFERENCE_LOW = "reference_low"  # referenceRange[0].low.value
REFERENCE_HIGH = "reference_high"  # referenceRange[0].high.value
INTERPRETATION_CODE = "interpretation_code"  # interpretation[0].coding[0].code
RESOURCE = "resource"  # the whole Observation, as received, jsonb

EXTRACTED_COLUMNS: tuple[str, ...] = (
    *TEXT_FIELDS,
    VALUE_NUMERIC,
    VALUE_UNIT,
    VALUE_TEXT,
    REFERENCE_LOW,
    REFERENCE_HIGH,
    INTERPRETATION_CODE,
)
NUMERIC_COLUMNS: tuple[str, ...] = (VALUE_NUMERIC, REFERENCE_LOW, REFERENCE_HIGH)
COLUMNS: tuple[str, ...] = (*EXTRACTED_COLUMNS, RESOURCE, *METADATA_COLUMNS)

# numeric(38, 9): exact, and wide enough for any lab value; a value outside it is
# quarantined (`out_of_range:<field>`) rather than failing the whole load.
NUMERIC_PRECISION = 38
NUMERIC_SCALE = 9
NUMERIC_LIMIT = 10.0 ** (NUMERIC_PRECISION - NUMERIC_SCALE)

COLUMN_HINTS: dict[str, TColumnSchema] = {
    **{name: {"data_type": "text", "nullable": True} for name in EXTRACTED_COLUMNS},
    **{
        name: {
            "data_type": "decimal",
            "precision": NUMERIC_PRECISION,
            "scale": NUMERIC_SCALE,
            "nullable": True,
        }
        for name in NUMERIC_COLUMNS
    },
    RESOURCE: {"data_type": "json", "nullable": False},
    **METADATA_HINTS,
}
PRIMARY_KEY: tuple[str, str] = FILE_RECORD_KEY

# The table's columns are fixed: no new column, and no column changing type.
SCHEMA_CONTRACT: TSchemaContractDict = {
    "tables": "evolve",
    "columns": "freeze",
    "data_type": "freeze",
}

# value_type: which Observation.value[x] is set; `component` when none is but components
# are; `none` when neither is.
VALUE_TYPES: tuple[tuple[str, str], ...] = (
    ("valueQuantity", "quantity"),
    ("valueCodeableConcept", "codeable_concept"),
    ("valueString", "string"),
    ("valueBoolean", "boolean"),
    ("valueInteger", "integer"),
    ("valueRange", "range"),
    ("valueRatio", "ratio"),
    ("valueSampledData", "sampled_data"),
    ("valueTime", "time"),
    ("valueDateTime", "date_time"),
    ("valuePeriod", "period"),
)
COMPONENT = "component"
NO_VALUE = "none"

# The elements of a FHIR R4 Observation (and `_<element>`, their primitive extensions);
# any other top-level field is kept in `resource` and reported as a new field.
OBSERVATION_ELEMENTS = frozenset(
    {
        "resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
        "extension", "modifierExtension", "identifier", "basedOn", "partOf", "status",
        "category", "code", "subject", "focus", "encounter", "effectiveDateTime",
        "effectivePeriod", "effectiveTiming", "effectiveInstant", "issued", "performer",
        *(field for field, _ in VALUE_TYPES), "dataAbsentReason", "interpretation", "note",
        "bodySite", "method", "specimen", "device", "referenceRange", "hasMember",
        "derivedFrom", "component",
    }
)  # fmt: skip
NEW_FIELD_PREFIX = "resource."  # how a new field is named in the load summary

# Quarantine reasons (a record's `reason`); wrong types and out-of-range numbers are
# suffixed with the field, e.g. `wrong_type:valueQuantity.value`.
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NESTING_TOO_DEEP = "nesting_too_deep"
NOT_AN_OBJECT = "not_an_object"
NUL_CHARACTER = "nul_character"  # \u0000: Postgres jsonb cannot hold it
INVALID_UNICODE = "invalid_unicode"  # a lone UTF-16 surrogate escape: nor can it hold that
NOT_AN_OBSERVATION = "not_an_observation"
MISSING_ID = "missing_id"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
RECORD_TOO_LARGE = "record_too_large"
NO_RESOURCE = "no_resource"  # a Bundle entry without a resource

# Rows per CSV part handed to dlt: parts load in parallel, each in one COPY.
PART_ROWS = 250_000

# Reading NDJSON. Lines read one by one once a block Arrow refused is halved down to this.
EXACT_LINES = 64
# Deeper nesting is quarantined (`nesting_too_deep`) on both paths: no FHIR resource comes
# near it, Python's parser goes little further, and Arrow's and Postgres's parsers recurse.
MAX_DEPTH = 256
# Arrow's parser is known to handle this much nesting (it crashes far deeper): a line that
# may nest deeper, having more brackets, is not given to it.
ARROW_SAFE_DEPTH = 8192
# Rows gathered on the line-by-line path (Bundles) before they are written out.
EXACT_FLUSH_ROWS = 10_000
# Threads parsing NDJSON blocks, and blocks read ahead of the one being counted (each at
# most a JsonLinesFile block, 8 MiB, and its parsed form in memory).
WORKERS = max(2, min(4, os.cpu_count() or 2))
IN_FLIGHT = 2 * WORKERS
