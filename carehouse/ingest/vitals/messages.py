"""Vitals messages checked and rendered as Postgres COPY text, one micro-batch at a time.

This is the drain's hot path: a message costs a few microseconds here. orjson
parses (about four times faster than `json`, and strict like Postgres: no NaN,
no lone surrogates, no invalid UTF-8), the common case is checked and rendered
inline, and anything unusual takes the slow path, which names the first reason
a message cannot be loaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import Message

from carehouse.ingest.vitals.settings import (
    BAD_TIMESTAMP,
    CONSCIOUSNESS_LEVELS,
    FIELD_NAMES,
    FIELDS,
    INVALID_VALUE,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_UTF8,
    NULL_VALUE,
    SPO2_SCALES,
    WRONG_TYPE,
)

# Column order of the rendered rows; `_ingested_at` is the table default (the batch's
# transaction time), so rows need not carry it.
RAW_COPY_COLUMNS: tuple[str, ...] = (
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "message_key",
    "payload",
    *FIELD_NAMES,
    "kafka_topic",
    "_drain_batch_id",
)
DEAD_LETTER_COPY_COLUMNS: tuple[str, ...] = (
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "message_key",
    "message_value",
    "reason",
    "kafka_topic",
    "_drain_batch_id",
)

_NULL = "\\N"  # COPY text's null marker
_FIELD_SET = frozenset(FIELD_NAMES)
_NUMBER_TYPES = frozenset((int, float))
# Looked up after a type check (True == 1, so bools must be excluded first); an integral
# float such as 2.0 renders as a smallint Postgres accepts.
_SCALES = {scale: str(scale) for scale in SPO2_SCALES}
_LEVELS = {level: level for level in CONSCIOUSNESS_LEVELS}
_BOOLEANS = {True: "t", False: "f"}
_COPY_SPECIAL = b"\\\t\n\r"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class RenderedBatch:
    """One consume() worth of messages, as COPY text for the raw and dead-letter tables."""

    batch_id: str
    raw_data: bytes = b""
    dead_data: bytes = b""
    raw_count: int = 0
    dead_count: int = 0
    rejected: int = 0  # rows Postgres refused after all, moved to the dead letters
    quarantined: Counter[str] = field(default_factory=Counter)
    new_fields: Counter[str] = field(default_factory=Counter)
    messages_with_new_fields: int = 0
    skipped: int = 0  # behind the partition's position: already in the database, or not ours
    # Per partition: the position the batch starts from (what the database must still
    # say, or another worker got there first), and the one it ends at.
    start_offsets: dict[int, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    errors: list[Message] = field(default_factory=list)  # partition EOF and errors

    @property
    def messages(self) -> int:
        """Messages the batch loads or dead-letters."""
        return self.raw_count + self.dead_count

    def add_new_fields(self, doc: dict[str, Any]) -> None:
        """Count a valid message that carries fields the source did not have before."""
        self.messages_with_new_fields += 1
        self.new_fields.update(name for name in doc if name not in _FIELD_SET)

    def reject(self, reasons: list[str]) -> None:
        """Account for raw rows Postgres refused, now dead letters with these reasons."""
        self.raw_count -= len(reasons)
        self.dead_count += len(reasons)
        self.rejected += len(reasons)
        self.quarantined.update(reasons)


class Renderer:
    """Renders micro-batches of one topic; keeps small per-batch caches."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._seconds: dict[int, str] = {}
        self._keys: dict[bytes, str] = {}
        self._observed: dict[str, str] = {}

    def render(
        self, messages: Sequence[Message], positions: dict[int, int], batch_id: str
    ) -> RenderedBatch:
        """Check and render `messages`; `positions` is each owned partition's next offset.

        A message behind its partition's position, or of a partition not in
        `positions`, is counted as skipped. `positions` is not changed.
        """
        batch = RenderedBatch(batch_id=batch_id)
        raw_rows: list[str] = []
        dead_rows: list[str] = []
        ends = batch.end_offsets
        suffix = f"\t{_copy_text(self.topic)}\t{batch_id}\n"
        keys, observed = self._keys, self._observed
        stamps: dict[int, str] = {}
        if len(keys) > 100_000:
            keys.clear()
        observed.clear()
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        numbers, scales, levels, booleans = _NUMBER_TYPES, _SCALES, _LEVELS, _BOOLEANS
        iso_timestamp = _iso_timestamp
        for message in messages:
            if message.error() is not None:
                batch.errors.append(message)
                continue
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            position = positions.get(partition)
            if position is None or offset < position:
                batch.skipped += 1
                continue
            ends[partition] = offset + 1
            value = message.value()
            ts_type, ts_ms = message.timestamp()
            timestamp = stamps.get(ts_ms) if ts_type else _NULL
            if timestamp is None:
                timestamp = stamps[ts_ms] = self._timestamp(ts_ms)
            key = message.key()
            if key is None:
                key_text = _NULL
            else:
                cached = keys.get(key)
                if cached is None:
                    cached = keys[key] = _bytea(key)
                key_text = cached
            row = None
            if value is not None and len(value.translate(None, _COPY_SPECIAL)) == len(value):
                # The common case. No backslash: no escapes in strings (no \u0000); no tab,
                # newline or carriage return: nothing in the row needs COPY escaping.
                try:
                    doc = loads(value)
                    device_id = doc["device_id"]
                    patient_id = doc["patient_id"]
                    observed_at = doc["observed_at"]
                    heart_rate = doc["heart_rate"]
                    resp_rate = doc["resp_rate"]
                    systolic_bp = doc["systolic_bp"]
                    diastolic_bp = doc["diastolic_bp"]
                    spo2 = doc["spo2"]
                    spo2_scale = doc["spo2_scale"]
                    on_oxygen = doc["on_oxygen"]
                    consciousness = doc["consciousness"]
                    temperature_c = doc["temperature_c"]
                except (decode_error, KeyError, TypeError):
                    pass  # the slow path below names the reason
                else:
                    if (
                        type(device_id) is str
                        and type(patient_id) is str
                        and type(observed_at) is str
                        and type(heart_rate) in numbers
                        and type(resp_rate) in numbers
                        and type(systolic_bp) in numbers
                        and type(diastolic_bp) in numbers
                        and type(spo2) in numbers
                        and type(spo2_scale) in numbers
                        and type(on_oxygen) is bool
                        and type(consciousness) is str
                        and type(temperature_c) in numbers
                    ):
                        scale = scales.get(spo2_scale)
                        level = levels.get(consciousness)
                        when = observed.get(observed_at)
                        if when is None:
                            when = observed[observed_at] = iso_timestamp(observed_at)
                        if scale is not None and level is not None and when:
                            row = (
                                f"{partition}\t{offset}\t{timestamp}\t{key_text}\t"
                                f"{value.decode()}\t{device_id}\t{patient_id}\t{when}\t"
                                f"{heart_rate}\t{resp_rate}\t{systolic_bp}\t{diastolic_bp}\t"
                                f"{spo2}\t{scale}\t{booleans[on_oxygen]}\t{level}\t"
                                f"{temperature_c}{suffix}"
                            )
                            if len(doc) > len(FIELD_NAMES):
                                batch.add_new_fields(doc)
            if row is None:
                reason, doc = check(value)
                if reason is None:
                    # Valid, but escaped strings or whitespace: rendered the careful way.
                    assert doc is not None and value is not None
                    head = f"{partition}\t{offset}\t{timestamp}\t{key_text}\t"
                    raw_rows.append(head + _render_checked(doc, value) + suffix)
                    if len(doc) > len(FIELD_NAMES):
                        batch.add_new_fields(doc)
                else:
                    dead_rows.append(
                        f"{partition}\t{offset}\t{timestamp}\t{key_text}\t"
                        f"{_NULL if value is None else _bytea(value)}\t{reason}{suffix}"
                    )
                    batch.quarantined[reason] += 1
            else:
                raw_rows.append(row)
        for partition in ends:
            batch.start_offsets[partition] = positions[partition]
        batch.raw_data = "".join(raw_rows).encode()
        batch.raw_count = len(raw_rows)
        batch.dead_data = "".join(dead_rows).encode()
        batch.dead_count = len(dead_rows)
        return batch

    def _timestamp(self, ms: int) -> str:
        seconds, millis = divmod(ms, 1000)
        text = self._seconds.get(seconds)
        if text is None:
            if len(self._seconds) > 10_000:
                self._seconds.clear()
            text = self._seconds[seconds] = datetime.fromtimestamp(seconds, UTC).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
        return f"{text}.{millis:03d}+00"


def check(value: bytes | None) -> tuple[str | None, dict[str, Any] | None]:
    """Why a message value cannot be loaded (None when it can), and the parsed object.

    The first problem found, in this order: no value (a tombstone), bytes that are
    not UTF-8, not JSON, not an object, a missing field, a field of the wrong type,
    an invalid value (in field order each time). Extra fields are fine.
    """
    if value is None:
        return NULL_VALUE, None
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8, None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return NOT_JSON, None
    if b"\\u0000" in value and _has_nul(doc):
        return NOT_JSON, None  # valid JSON, but neither jsonb nor text can hold a NUL
    if type(doc) is not dict:
        return NOT_AN_OBJECT, None
    for name in FIELD_NAMES:
        if name not in doc:
            return f"{MISSING_FIELD}:{name}", None
    for name, kind in FIELDS:
        if not _TYPE_CHECKS[kind](doc[name]):
            return f"{WRONG_TYPE}:{name}", None
    for name, kind in FIELDS:
        item = doc[name]
        if kind == "timestamp" and not _iso_timestamp(item):
            return BAD_TIMESTAMP, None
        if (kind == "scale" and item not in _SCALES) or (
            kind == "consciousness" and item not in _LEVELS
        ):
            return f"{INVALID_VALUE}:{name}", None
    return None, doc


_TYPE_CHECKS = {
    "text": lambda item: type(item) is str,
    "timestamp": lambda item: type(item) is str,
    "number": lambda item: type(item) in _NUMBER_TYPES,
    "scale": lambda item: type(item) in _NUMBER_TYPES,
    "boolean": lambda item: type(item) is bool,
    "consciousness": lambda item: type(item) is str,
}


def _render_checked(doc: dict[str, Any], value: bytes) -> str:
    """The payload and typed columns of a checked message, escaped for COPY text."""
    columns = [_copy_text(value.decode())]
    for name, kind in FIELDS:
        item = doc[name]
        if kind == "timestamp":
            columns.append(_iso_timestamp(item))
        elif kind == "scale":
            columns.append(_SCALES[item])
        elif kind == "boolean":
            columns.append(_BOOLEANS[item])
        elif kind == "number":
            columns.append(f"{item}")
        else:
            columns.append(_copy_text(item))
    return "\t".join(columns)


def _iso_timestamp(text: str) -> str:
    """ISO 8601 with a UTC offset, as Postgres reads it; empty when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        return ""  # a wall-clock time without an offset is ambiguous
    if (
        # The shape monitors send, which Postgres reads exactly as Python did: pass it on
        # (rendering costs more than checking). Python's other ISO forms (week dates,
        # basic format, any separator) are re-rendered for Postgres.
        len(text) >= 20
        and text[4] == "-"
        and text[7] == "-"
        and text[10] == "T"
        and text[13] == ":"
        and text[16] == ":"
        and text[19] in ".Z+-"
        and (text[-1] == "Z" or (text[-6] in "+-" and text[-3] == ":"))
    ):
        return text
    return moment.isoformat()


def _has_nul(item: object) -> bool:
    if type(item) is str:
        return "\x00" in item
    if type(item) is dict:
        return any(_has_nul(key) or _has_nul(sub) for key, sub in item.items())
    if type(item) is list:
        return any(_has_nul(sub) for sub in item)
    return False


def _copy_text(text: str) -> str:
    return text.translate(_COPY_ESCAPES)


_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def copy_unescape(text: str) -> str:
    """The value a COPY text field written by this module stands for."""
    return re.sub(r"\\[\\tnr]", lambda match: _UNESCAPES[match.group()], text)


def _bytea(data: bytes) -> str:
    # bytea's hex input, its backslash escaped for COPY text.
    return "\\\\x" + data.hex()
