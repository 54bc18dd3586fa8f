"""Constants of the vital signs source: topic, tables, the message's fields and their types."""

from __future__ import annotations

from typing import Literal

SOURCE = "vitals"
TOPIC = "patient-vitals"  # the default of Settings.vitals_topic
PARTITIONS = 6
REPLICATION_FACTOR = 1

DATASET = "raw_vitals"
TABLE = "vitals"
OFFSETS_TABLE = "_carehouse_offsets"  # in DATASET: where each partition's drain resumes
QUARANTINE_SCHEMA = "quarantine"
DEAD_LETTER_TABLE = "vitals_dead_letters"  # in QUARANTINE_SCHEMA

# One name for the drain, whether it runs alone (assign) or scaled out (subscribe): the
# Kafka consumer group and the key of the database offsets. Both modes resume from the
# same offsets, so they can take turns over the same raw table.
DRAIN_GROUP = "carehouse-vitals-drain"

# Header a streaming producer stamps on each message (epoch milliseconds, ASCII digits),
# so end-to-end latency can be measured without touching the JSON fields.
PRODUCED_AT_HEADER = "produced_at"

FieldKind = Literal["text", "timestamp", "number", "scale", "boolean", "consciousness"]

# The message's fields, in the order the raw table holds them, with what each must be.
FIELDS: tuple[tuple[str, FieldKind], ...] = (
    ("device_id", "text"),
    ("patient_id", "text"),
    ("observed_at", "timestamp"),
    ("heart_rate", "number"),
    ("resp_rate", "number"),
    ("systolic_bp", "number"),
    ("diastolic_bp", "number"),
    ("spo2", "number"),
    ("spo2_scale", "scale"),
    ("on_oxygen", "boolean"),
    ("consciousness", "consciousness"),
    ("temperature_c", "number"),
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
SPO2_SCALES = (1, 2)
CONSCIOUSNESS_LEVELS = ("A", "C", "V", "P", "U")  # ACVPU: alert, new confusion, voice, pain, none

# Dead-letter reasons; field-specific ones are `<reason>:<field>`.
NULL_VALUE = "null_value"  # a tombstone: the message has no value
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"  # not RFC 8259 JSON, or JSON that jsonb cannot hold (a \u0000 escape)
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
BAD_TIMESTAMP = "bad_timestamp"  # observed_at is not ISO 8601 with a UTC offset
REJECTED_BY_DATABASE = "rejected_by_database"  # `:<sqlstate>`; a safety net, not expected

# The drain's micro-batches: one consume() call, one transaction. Large enough to spread
# the per-transaction cost (fsync, offsets), small enough to flush at least every second.
BATCH_MESSAGES = 20_000
POLL_SECONDS = 0.5
