"""FHIR R4 Observations read from NDJSON and Bundle files into the raw table's shape.

NDJSON is read in blocks of whole lines, each taking the cheapest path that is
provably right for it:

1. fast: Arrow's JSON reader with an explicit schema for every field taken out
   of a resource, the extraction done on whole columns. Arrow refuses a block in
   which any of those fields has another JSON type, or a line is not one JSON
   object; a block that may hold what Postgres jsonb refuses (a NUL escape,
   `NaN`, deep nesting) or that is not valid UTF-8 is not tried.
2. exact: a refused block is halved until the halves pass, down to small runs
   that are read line by line with Python's json module, which names what is
   wrong with each line.

Both paths give the same result for a line the fast path accepts: the exact
one only checks the types of the fields it extracts, all of which Arrow's
schema pins. Numbers are read as doubles on both paths.

A Bundle (`*.json`) is streamed entry by entry; `_source_line` is then the
entry's position in `Bundle.entry` (1-based), since a Bundle may be one line.
"""

from __future__ import annotations

import logging
import re
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from dlt.common.schema.typing import TColumnSchema

from dlt_sources._common.columns import (
    DLT_ID,
    DLT_LOAD_ID,
    INGESTED_AT,
    METADATA_COLUMNS,
    SOURCE_FILE,
    SOURCE_HASH,
    SOURCE_LINE,
)
from dlt_sources._common.csvfile import escape_raw
from dlt_sources._common.jsonlines import (
    BOM,
    DECODER,
    KEPT_HEAD_BYTES,
    MAX_RECORD_BYTES,
    JsonDocument,
    JsonLinesFile,
    JsonStreamError,
    JsonValue,
    LineBlock,
    LongLine,
    RecordTooLarge,
)
from dlt_sources._common.parts import Block, csv_rows
from dlt_sources.files import FileBatch, FileChangedError, LandedFile, Reject
from dlt_sources.labs.settings import (
    ARROW_SAFE_DEPTH,
    BUNDLE_GLOB,
    COLUMN_HINTS,
    COLUMNS,
    COMPONENT,
    EXACT_FLUSH_ROWS,
    EXACT_LINES,
    EXTRACTED_COLUMNS,
    IN_FLIGHT,
    INVALID_JSON,
    INVALID_UNICODE,
    INVALID_UTF8,
    LOINC_SYSTEM,
    MAX_DEPTH,
    MISSING_ID,
    NESTING_TOO_DEEP,
    NEW_FIELD_PREFIX,
    NO_RESOURCE,
    NO_VALUE,
    NOT_AN_OBJECT,
    NOT_AN_OBSERVATION,
    NUL_CHARACTER,
    NUMERIC_COLUMNS,
    NUMERIC_LIMIT,
    OBSERVATION_ELEMENTS,
    OUT_OF_RANGE,
    RECORD_TOO_LARGE,
    RESOURCE,
    VALUE_TYPES,
    WORKERS,
    WRONG_TYPE,
)

log = logging.getLogger(__name__)

_S = pa.string()
_CODING = pa.struct([("system", _S), ("code", _S), ("display", _S)])
_CONCEPT = pa.struct([("coding", pa.list_(_CODING)), ("text", _S)])
_QUANTITY = pa.struct([("value", pa.float64()), ("unit", _S), ("system", _S), ("code", _S)])
_REFERENCE = pa.struct([("reference", _S)])
_ANY_OBJECT = pa.struct([])  # only its presence matters; what is inside is not read

# Every field the extraction reads, with its JSON type: a block where one of them has
# another type is refused by Arrow and goes to the exact path.
ARROW_SCHEMA = pa.schema(
    [
        ("resourceType", _S),
        ("id", _S),
        ("status", _S),
        ("category", pa.list_(_CONCEPT)),
        ("code", _CONCEPT),
        ("subject", _REFERENCE),
        ("encounter", _REFERENCE),
        ("effectiveDateTime", _S),
        ("effectivePeriod", pa.struct([("start", _S)])),
        ("effectiveInstant", _S),
        ("issued", _S),
        ("valueQuantity", _QUANTITY),
        ("valueCodeableConcept", _CONCEPT),
        ("valueString", _S),
        ("valueBoolean", pa.bool_()),
        ("valueInteger", pa.int64()),
        ("valueRange", _ANY_OBJECT),
        ("valueRatio", _ANY_OBJECT),
        ("valueSampledData", _ANY_OBJECT),
        ("valueTime", _S),
        ("valueDateTime", _S),
        ("valuePeriod", _ANY_OBJECT),
        ("component", pa.list_(_ANY_OBJECT)),
        ("interpretation", pa.list_(_CONCEPT)),
        ("referenceRange", pa.list_(pa.struct([("low", _QUANTITY), ("high", _QUANTITY)]))),
        # Common elements not extracted: declared so that Arrow need not infer them.
        ("meta", pa.struct([("versionId", _S), ("lastUpdated", _S), ("source", _S)])),
    ]
)
_PARSE = pa_json.ParseOptions(explicit_schema=ARROW_SCHEMA, unexpected_field_behavior="infer")

# What Postgres jsonb refuses although JSON parsers take it: a NUL escape and a lone
# UTF-16 surrogate escape (Arrow refuses the latter itself), NaN and Infinity (Python's
# parser is told to refuse them, Arrow's output is checked for them).
_ESCAPES_TO_CHECK = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte, after surrogateescape
_WHITESPACE = re.compile(r"[ \t\n\r]*")

Row = tuple[Any, ...]  # the EXTRACTED_COLUMNS of one Observation


class _Refused(Exception):
    """A record that cannot be loaded, and why (the quarantine reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---- the exact path: one resource at a time ------------------------------------------------


def _typed(parent: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    """parent[key], None when absent or null, refused when of another JSON type."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise _Refused(f"{WRONG_TYPE}:{path}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_NUMBER = (int, float)


def _first(parent: dict[str, Any] | None, key: str, path: str) -> dict[str, Any] | None:
    """The first element of the list parent[key], which must be an object when not null."""
    if parent is None:
        return None
    items = _typed(parent, key, list, path)
    if not items or items[0] is None:
        return None
    if not isinstance(items[0], dict):
        raise _Refused(f"{WRONG_TYPE}:{path}")
    return items[0]


def _text(parent: dict[str, Any] | None, key: str, path: str) -> str | None:
    return None if parent is None else _typed(parent, key, str, path)


def _object(parent: dict[str, Any] | None, key: str, path: str) -> dict[str, Any] | None:
    return None if parent is None else _typed(parent, key, dict, path)


def _number(parent: dict[str, Any] | None, key: str, path: str) -> float | None:
    if parent is None:
        return None
    value = _typed(parent, key, _NUMBER, path)
    if value is None:
        return None
    try:
        number = float(value)  # as the fast path reads it: the same double
    except OverflowError:
        raise _Refused(f"{OUT_OF_RANGE}:{path}") from None
    if not abs(number) < NUMERIC_LIMIT:
        raise _Refused(f"{OUT_OF_RANGE}:{path}")
    return number


def _matching(
    parent: dict[str, Any] | None, path: str, key: str, wanted: str | None
) -> dict[str, Any] | None:
    """The first coding of parent.coding whose `key` is `wanted` (or, for None, is set)."""
    if parent is None:
        return None
    for coding in _typed(parent, "coding", list, f"{path}.coding") or ():
        if coding is None:
            continue
        if not isinstance(coding, dict):
            raise _Refused(f"{WRONG_TYPE}:{path}.coding")
        value = _text(coding, key, f"{path}.coding.{key}")
        if value is not None and (wanted is None or value == wanted):
            return coding
    return None


def extract(resource: object) -> tuple[Row, list[str]]:
    """An Observation's extracted columns and its non-FHIR fields; raises _Refused."""
    if not isinstance(resource, dict):
        raise _Refused(NOT_AN_OBJECT)
    if resource.get("resourceType") != "Observation":
        raise _Refused(NOT_AN_OBSERVATION)
    identifier = resource.get("id")
    if identifier is None or identifier == "":
        raise _Refused(MISSING_ID)
    _typed(resource, "id", str, "id")

    category = _first(_first(resource, "category", "category"), "coding", "category.coding")
    loinc = _matching(_object(resource, "code", "code"), "code", "system", LOINC_SYSTEM)
    effective = _text(resource, "effectiveDateTime", "effectiveDateTime")
    if effective is None:
        period = _object(resource, "effectivePeriod", "effectivePeriod")
        effective = _text(period, "start", "effectivePeriod.start")
    if effective is None:
        effective = _text(resource, "effectiveInstant", "effectiveInstant")

    value_type, numeric, unit, text = _value(resource)
    reference_range = _first(resource, "referenceRange", "referenceRange")
    low = _object(reference_range, "low", "referenceRange.low")
    high = _object(reference_range, "high", "referenceRange.high")
    interpretation = _first(
        _first(resource, "interpretation", "interpretation"), "coding", "interpretation.coding"
    )
    row = (
        identifier,
        _text(resource, "status", "status"),
        _text(category, "code", "category.coding.code"),
        _text(loinc, "code", "code.coding.code"),
        _text(loinc, "display", "code.coding.display"),
        _text(_object(resource, "subject", "subject"), "reference", "subject.reference"),
        _text(_object(resource, "encounter", "encounter"), "reference", "encounter.reference"),
        effective,
        _text(resource, "issued", "issued"),
        value_type,
        numeric,
        unit,
        text,
        _number(low, "value", "referenceRange.low.value"),
        _number(high, "value", "referenceRange.high.value"),
        _text(interpretation, "code", "interpretation.coding.code"),
    )
    return row, new_fields(resource)


def _value(resource: dict[str, Any]) -> tuple[str, float | None, str | None, str | None]:
    """value_type, value_numeric, value_unit and value_text of an Observation."""
    for key, value_type in VALUE_TYPES:
        value = resource.get(key)
        if value is None:
            continue
        if key == "valueQuantity":
            quantity = _typed(resource, key, dict, key)
            numeric = _number(quantity, "value", "valueQuantity.value")
            code = _text(quantity, "code", "valueQuantity.code")
            unit = code if code is not None else _text(quantity, "unit", "valueQuantity.unit")
            return value_type, numeric, unit, None
        if key == "valueCodeableConcept":
            concept = _typed(resource, key, dict, key)
            text = _text(concept, "text", "valueCodeableConcept.text")
            if text is None:
                coded = _matching(concept, key, "code", None)
                text = _text(coded, "code", "valueCodeableConcept.coding.code")
            return value_type, None, None, text
        if key == "valueBoolean":
            return value_type, None, None, "true" if _typed(resource, key, bool, key) else "false"
        if key == "valueInteger":
            _typed(resource, key, int, key)
            return value_type, _number(resource, key, key), None, None
        if key in ("valueString", "valueTime", "valueDateTime"):
            return value_type, None, None, _typed(resource, key, str, key)
        _typed(resource, key, dict, key)
        return value_type, None, None, None
    components = _typed(resource, "component", list, "component")
    return (COMPONENT if components else NO_VALUE), None, None, None


def _is_new_field(name: str) -> bool:
    """True for a top-level field FHIR R4 does not define for an Observation."""
    return name not in OBSERVATION_ELEMENTS and not (
        name.startswith("_") and name[1:] in OBSERVATION_ELEMENTS
    )


def new_fields(resource: dict[str, Any]) -> list[str]:
    """Top-level fields (not null) that FHIR R4 does not define for an Observation."""
    return [key for key, value in resource.items() if value is not None and _is_new_field(key)]


def _too_deep(text: str, value: object) -> bool:
    """True when a parsed value nests deeper than MAX_DEPTH (only counted when it could)."""
    if not isinstance(value, dict | list) or text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        assert isinstance(children, Iterable)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def judge_text(text: str, parsed: object) -> tuple[Row, list[str]]:
    """Checks that need the resource's text, then `extract`; raises _Refused."""
    if _ESCAPED_BYTE.search(text):
        raise _Refused(INVALID_UTF8)
    if _too_deep(text, parsed):
        raise _Refused(NESTING_TOO_DEEP)
    if _ESCAPES_TO_CHECK.search(text):
        reason = _unstorable(parsed)
        if reason:
            raise _Refused(reason)
    return extract(parsed)


def _unstorable(value: object) -> str | None:
    """Why Postgres jsonb cannot store a parsed value (NUL, lone surrogate), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return NUL_CHARACTER
            if _SURROGATE.search(item):
                return INVALID_UNICODE
    return None


def judge_line(raw: bytes) -> tuple[Row, list[str], str] | None:
    """One NDJSON line: its row, new fields and text; None for a blank line; raises _Refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(INVALID_UTF8) from None
    text = text.rstrip("\r")  # a CR LF line end (the LF is gone already)
    if not text.strip(" \t\r\n"):
        return None
    try:
        parsed = DECODER.decode(text)
    except RecursionError:
        raise _Refused(NESTING_TOO_DEEP) from None
    except ValueError:  # JSONDecodeError, or NaN / Infinity
        raise _Refused(INVALID_JSON) from None
    row, new = judge_text(text, parsed)
    return row, new, text


# ---- the fast path: a block at a time -------------------------------------------------------


@dataclass
class Parsed:
    """A run of loadable Observations (with their text and line), and the rejects."""

    rows: pa.RecordBatch  # EXTRACTED_COLUMNS, RESOURCE, SOURCE_LINE
    rejects: list[Reject] = field(default_factory=list)
    new_fields: set[str] = field(default_factory=set)
    blank_lines: int = 0


def _lines(chunk: bytes) -> pa.Array | None:
    """The block's lines as one Arrow string array without line ends; None if not UTF-8."""
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(chunk)))
    block = pa.StringArray.from_buffers(1, offsets, pa.py_buffer(chunk))  # zero-copy
    try:
        block.validate(full=True)  # UTF-8 included
    except pa.ArrowInvalid:
        return None
    lines = pc.list_flatten(pc.split_pattern(block, "\n"))
    if chunk.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    if b"\r" in chunk:
        lines = pc.replace_substring_regex(lines, "\r+$", "")
    return lines


def _child(array: pa.Array, *path: str) -> pa.Array:
    for name in path:
        array = pc.struct_field(array, name)
    return array


def _first_of(lists: pa.Array) -> pa.Array:
    """The first element of each list (null for a null or empty list)."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    starts = lists.offsets.slice(0, len(lists))
    index = pc.if_else(pc.greater(lengths, 0), starts, pa.scalar(None, starts.type))
    return pc.take(lists.values, index)


def _first_where(lists: pa.Array, key: str, wanted: str | None, rows: pa.Array) -> pa.Array:
    """Of each list of codings, the first whose `key` is `wanted` (or, for None, is set)."""
    codings = lists.flatten()
    values = pc.struct_field(codings, key)
    hits = pc.is_valid(values) if wanted is None else pc.fill_null(pc.equal(values, wanted), False)
    owners = pc.filter(pc.list_parent_indices(lists), hits)
    return pc.take(pc.filter(codings, hits), pc.index_in(rows, value_set=owners))


def _value_columns(table: pa.RecordBatch, rows: pa.Array) -> dict[str, pa.Array]:
    """value_type, value_numeric, value_unit and value_text, on whole columns."""
    quantity = table["valueQuantity"]
    concept = table["valueCodeableConcept"]
    present = [pc.is_valid(table[key]) for key, _ in VALUE_TYPES]
    components = pc.fill_null(pc.greater(pc.list_value_length(table["component"]), 0), False)
    value_type = pc.case_when(
        pc.make_struct(*present, components),
        *(pa.scalar(name) for _, name in VALUE_TYPES),
        pa.scalar(COMPONENT),
        pa.scalar(NO_VALUE),
    )
    is_type = {name: pc.equal(value_type, name) for _, name in VALUE_TYPES}
    null_double = pa.scalar(None, pa.float64())
    null_text = pa.scalar(None, pa.string())
    numeric = pc.if_else(
        is_type["quantity"],
        _child(quantity, "value"),
        pc.if_else(is_type["integer"], pc.cast(table["valueInteger"], pa.float64()), null_double),
    )
    unit = pc.if_else(
        is_type["quantity"],
        pc.coalesce(_child(quantity, "code"), _child(quantity, "unit")),
        null_text,
    )
    coded = _child(_first_where(_child(concept, "coding"), "code", None, rows), "code")
    text = pc.case_when(
        pc.make_struct(
            is_type["codeable_concept"],
            is_type["string"],
            is_type["boolean"],
            is_type["time"],
            is_type["date_time"],
        ),
        pc.coalesce(_child(concept, "text"), coded),
        table["valueString"],
        pc.cast(table["valueBoolean"], pa.string()),
        table["valueTime"],
        table["valueDateTime"],
        null_text,
    )
    return {"value_type": value_type, "value_numeric": numeric, "value_unit": unit,
            "value_text": text}  # fmt: skip


def _extract_columns(table: pa.RecordBatch) -> dict[str, pa.Array]:
    """The EXTRACTED_COLUMNS of every row of a parsed block."""
    rows = pa.array(range(table.num_rows), pa.int64())
    code = table["code"]
    loinc = _first_where(_child(code, "coding"), "system", LOINC_SYSTEM, rows)
    reference_range = _first_of(table["referenceRange"])
    columns = {
        "observation_id": table["id"],
        "status": table["status"],
        "category_code": _child(_first_of(_child(_first_of(table["category"]), "coding")), "code"),
        "loinc_code": _child(loinc, "code"),
        "loinc_display": _child(loinc, "display"),
        "patient_ref": _child(table["subject"], "reference"),
        "encounter_ref": _child(table["encounter"], "reference"),
        "effective_at": pc.coalesce(
            table["effectiveDateTime"],
            _child(table["effectivePeriod"], "start"),
            table["effectiveInstant"],
        ),
        "issued": table["issued"],
        **_value_columns(table, rows),
        "reference_low": _child(reference_range, "low", "value"),
        "reference_high": _child(reference_range, "high", "value"),
        "interpretation_code": _child(
            _first_of(_child(_first_of(table["interpretation"]), "coding")), "code"
        ),
    }
    return columns


def _out_of_range(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater_equal(pc.abs(values), NUMERIC_LIMIT), False)


def _depth(data_type: pa.DataType) -> int:
    """How deeply a type nests structs and lists (a JSON value's nesting, once parsed)."""
    deepest, stack = 0, [(data_type, 0)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if pa.types.is_struct(current):
            # An empty object nests one level, as Python counts it.
            deepest = max(deepest, depth + (current.num_fields == 0))
            stack.extend((current.field(i).type, depth + 1) for i in range(current.num_fields))
        elif pa.types.is_list(current):
            stack.append((current.value_type, depth + 1))
    return deepest


def _has_non_finite(array: pa.Array) -> bool:
    """True when a number anywhere in the (nested) array is NaN or infinite."""
    stack = [array]
    while stack:
        current = stack.pop()
        kind = current.type
        if pa.types.is_struct(kind):
            stack.extend(pc.struct_field(current, i) for i in range(kind.num_fields))
        elif pa.types.is_list(kind):
            stack.append(current.flatten())
        elif pa.types.is_floating(kind) and not pc.all(pc.is_finite(current)).as_py():
            return True
    return False


def parse_fast(chunk: bytes, first_line: int) -> Parsed | None:
    """A block of lines read by Arrow, or None when that cannot be trusted for this block."""
    if b"\\" in chunk and b"\\u0000" in chunk:
        return None
    lines = _lines(chunk)
    if lines is None:
        return None
    # Arrow's parser recurses: a line nesting many thousand levels would crash it. A line
    # nests at most as deep as it is long, so only long lines need their brackets counted.
    long_lines = pc.filter(lines, pc.greater(pc.binary_length(lines), ARROW_SAFE_DEPTH))
    if len(long_lines):
        brackets = pc.add(pc.count_substring(long_lines, "{"), pc.count_substring(long_lines, "["))
        if pc.max(brackets).as_py() > ARROW_SAFE_DEPTH:
            return None
    blank = pc.match_substring_regex(lines, r"^[ \t\r]*$")
    blanks = pc.sum(blank).as_py() or 0
    if blanks == len(lines):
        return Parsed(_RowBuffer().take(), blank_lines=blanks)
    try:
        parsed = pa_json.read_json(
            pa.BufferReader(chunk),
            # One block, one thread: blocks are parsed in parallel one level up.
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1),
            parse_options=_PARSE,
        )
    except pa.ArrowInvalid:
        return None
    if parsed.num_rows != len(lines) - blanks:
        return None  # two objects on a line, or one across lines
    if _depth(pa.struct(list(parsed.schema))) > MAX_DEPTH:
        return None
    (table,) = parsed.combine_chunks().to_batches()
    if _has_non_finite(table.to_struct_array()):
        return None  # NaN or Infinity somewhere: not JSON, and jsonb refuses them
    numbers = pc.add(pc.indices_nonzero(pc.invert(blank)), first_line) if blanks else None
    texts = pc.filter(lines, pc.invert(blank)) if blanks else lines
    if numbers is None:
        numbers = pc.add(pa.array(range(len(lines)), pa.int64()), first_line)
    columns = _extract_columns(table)
    reason = pc.case_when(
        pc.make_struct(
            pc.fill_null(pc.not_equal(table["resourceType"], "Observation"), True),
            pc.fill_null(pc.equal(table["id"], ""), True),
            _out_of_range(columns["value_numeric"]),
            _out_of_range(columns["reference_low"]),
            _out_of_range(columns["reference_high"]),
        ),
        pa.scalar(NOT_AN_OBSERVATION),
        pa.scalar(MISSING_ID),
        pa.scalar(f"{OUT_OF_RANGE}:valueQuantity.value"),
        pa.scalar(f"{OUT_OF_RANGE}:referenceRange.low.value"),
        pa.scalar(f"{OUT_OF_RANGE}:referenceRange.high.value"),
    )
    loadable = pc.is_null(reason)
    everything = pc.all(loadable).as_py()
    rejects: list[Reject] = []
    if not everything:
        refused = pc.invert(loadable)
        for line, why, text in zip(
            pc.filter(numbers, refused).to_pylist(),
            pc.filter(reason, refused).to_pylist(),
            pc.filter(texts, refused).to_pylist(),
            strict=True,
        ):
            rejects.append(Reject(line, why, escape_raw(text.encode())))
    new = {
        name
        for name in table.schema.names
        if name not in ARROW_SCHEMA.names
        and _is_new_field(name)
        and pc.any(pc.and_(pc.is_valid(table[name]), loadable)).as_py()
    }
    arrays = [columns[name] for name in EXTRACTED_COLUMNS] + [texts, numbers]
    if not everything:
        arrays = [pc.filter(array, loadable) for array in arrays]
    rows = pa.RecordBatch.from_arrays(arrays, names=[*EXTRACTED_COLUMNS, RESOURCE, SOURCE_LINE])
    return Parsed(rows, rejects, new, blanks)


# ---- reading a file ---------------------------------------------------------------------


class _RowBuffer:
    """Rows of the exact path, gathered into record batches."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.texts: list[str] = []
        self.lines: list[int] = []

    def add(self, row: Row, text: str, line: int) -> None:
        self.rows.append(row)
        self.texts.append(text)
        self.lines.append(line)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self) -> pa.RecordBatch:
        """The gathered rows as a batch shaped like `Parsed.rows`; the buffer is emptied."""
        columns = list(zip(*self.rows, strict=True)) or [() for _ in EXTRACTED_COLUMNS]
        arrays = [
            pa.array(values, pa.float64() if name in NUMERIC_COLUMNS else pa.string())
            for name, values in zip(EXTRACTED_COLUMNS, columns, strict=True)
        ]
        batch = pa.RecordBatch.from_arrays(
            [*arrays, pa.array(self.texts, pa.string()), pa.array(self.lines, pa.int64())],
            names=[*EXTRACTED_COLUMNS, RESOURCE, SOURCE_LINE],
        )
        self.rows, self.texts, self.lines = [], [], []
        return batch


def parse_exact(chunk: bytes, first_line: int) -> Parsed:
    """A block of lines read one by one."""
    buffer = _RowBuffer()
    rejects: list[Reject] = []
    new: set[str] = set()
    blanks = 0
    raw_lines = chunk.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    for offset, raw in enumerate(raw_lines):
        line = first_line + offset
        try:
            judged = judge_line(raw)
        except _Refused as refused:
            rejects.append(Reject(line, refused.reason, escape_raw(raw.rstrip(b"\r"))))
            continue
        if judged is None:
            blanks += 1
            continue
        row, fields, text = judged
        buffer.add(row, text, line)
        new.update(fields)
    return Parsed(buffer.take(), rejects, new, blanks)


def parse_block(chunk: bytes, first_line: int) -> Iterator[Parsed]:
    """A block of lines: fast where Arrow can be trusted, line by line where it cannot."""
    parsed = parse_fast(chunk, first_line)
    if parsed is not None:
        yield parsed
        return
    lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
    if lines <= EXACT_LINES:
        yield parse_exact(chunk, first_line)
        return
    middle = chunk.find(b"\n", len(chunk) // 2) + 1
    if middle <= 0 or middle >= len(chunk):
        middle = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
    head, tail = chunk[:middle], chunk[middle:]
    yield from parse_block(head, first_line)
    yield from parse_block(tail, first_line + head.count(b"\n"))


@dataclass
class _FileReader:
    """What one file's reading has found so far, and how its rows are rendered."""

    file: LandedFile
    batch: FileBatch
    load_id: str
    new_fields: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        ingested_at = self.batch.ingested_at.isoformat(timespec="seconds")
        self.constants = {
            SOURCE_FILE: pa.scalar(self.file.name, pa.string()),
            SOURCE_HASH: pa.scalar(self.file.sha256, pa.string()),
            INGESTED_AT: pa.scalar(ingested_at, pa.string()),
            DLT_LOAD_ID: pa.scalar(self.load_id, pa.string()),
        }
        self.id_prefix = pa.scalar(f"{self.file.sha256[:16]}.", pa.string())
        self.empty = pa.scalar("", pa.string())

    def account(self, parsed: Parsed) -> Block | None:
        """Count a run's rows and rejects; its loadable rows as a CSV block, if any."""
        self.count(parsed)
        return self.render(parsed)

    def count(self, parsed: Parsed) -> None:
        """Count a run's rows, rejects, blank lines and new fields (in file order)."""
        self.batch.count(self.file, parsed.rows.num_rows, parsed.rejects)
        self.batch.outcome(self.file).blank_lines += parsed.blank_lines
        self.new_fields |= parsed.new_fields

    def render(self, parsed: Parsed) -> Block | None:
        """A run's loadable rows as a CSV block with their metadata (any thread)."""
        rows = parsed.rows
        if not rows.num_rows:
            return None
        lines = rows.column(SOURCE_LINE)
        metadata = {name: pa.repeat(value, rows.num_rows) for name, value in self.constants.items()}
        metadata[SOURCE_LINE] = lines
        metadata[DLT_ID] = pc.binary_join_element_wise(
            self.id_prefix, pc.cast(lines, pa.string()), self.empty
        )
        table = pa.RecordBatch.from_arrays(
            [
                *(rows.column(name) for name in (*EXTRACTED_COLUMNS, RESOURCE)),
                *(metadata[name] for name in METADATA_COLUMNS),
            ],
            names=list(COLUMNS),
        )
        return Block(COLUMNS, csv_rows(table), rows.num_rows)

    def work(self, item: LineBlock | LongLine) -> list[tuple[Parsed, Block | None]]:
        """Parse and render a block of lines (any thread); count the result in file order."""
        if isinstance(item, LongLine):
            note = f" [record of {item.size:,} bytes cut to its first {len(item.head):,}]"
            reject = Reject(item.line, RECORD_TOO_LARGE, escape_raw(item.head) + note)
            return [(Parsed(_RowBuffer().take(), [reject]), None)]
        return [(parsed, self.render(parsed)) for parsed in parse_block(item.data, item.first_line)]

    def reject(self, line: int, reason: str, raw: str) -> None:
        self.batch.count(self.file, 0, [Reject(line, reason, raw)])

    def finish(self, sha256: str) -> None:
        """Record the new fields; fail when the file changed since it was fingerprinted."""
        if sha256 != self.file.sha256:
            # Rows would carry a hash that is not their content's: fail, the load rolls back.
            raise FileChangedError(
                f"{self.file.name} changed while it was loaded (still being written?);"
                " load it again"
            )
        new = tuple(sorted(f"{NEW_FIELD_PREFIX}{name}" for name in self.new_fields))
        self.batch.outcome(self.file).new_columns = new
        if new:
            log.warning("%s: new Observation fields kept in resource: %s", self.file.name,
                        ", ".join(new))  # fmt: skip


def observation_blocks(files: list[LandedFile], batch: FileBatch, load_id: str) -> Iterator[Block]:
    """The files' loadable Observations as CSV blocks; counts and rejects go to `batch`.

    NDJSON blocks are parsed and rendered by a few threads (Arrow and the CSV writer
    release the GIL) while this one reads on; results are counted in file order.
    """
    pending: deque[tuple[_FileReader, Future[list[tuple[Parsed, Block | None]]] | str]]
    pending = deque()

    def ready(keep: int) -> Iterator[Block]:
        while len(pending) > keep:
            reader, result = pending.popleft()
            if isinstance(result, str):
                reader.finish(result)  # the file's hash, once all its blocks are counted
                continue
            for parsed, block in result.result():
                reader.count(parsed)
                if block is not None:
                    yield block

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="labs-parse") as pool:
        try:
            for file in files:
                reader = _FileReader(file, batch, load_id)
                if file.path.match(BUNDLE_GLOB):
                    yield from ready(0)
                    yield from _bundle_blocks(reader)
                    continue
                with JsonLinesFile(file.path) as source:
                    for item in source.blocks():
                        pending.append((reader, pool.submit(reader.work, item)))
                        yield from ready(IN_FLIGHT)
                    pending.append((reader, source.sha256()))
            yield from ready(0)
        finally:
            for _, result in pending:
                if not isinstance(result, str):
                    result.cancel()


def _bundle_blocks(reader: _FileReader) -> Iterator[Block]:
    """A Bundle's entries, streamed; a break in the JSON quarantines the rest as one record."""
    buffer = _RowBuffer()
    position = 0  # of the last entry read
    new: set[str] = set()
    with JsonDocument(reader.file.path) as document:
        try:
            for position, entry in _entries(document):
                judged = _judge_entry(entry)
                if isinstance(judged, Reject):
                    reader.reject(position, judged.reason, judged.raw)
                    continue
                row, fields, text = judged
                buffer.add(row, text, position)
                new.update(fields)
                if len(buffer) >= EXACT_FLUSH_ROWS:
                    block = reader.account(Parsed(buffer.take()))
                    if block is not None:
                        yield block
        except _NotABundle:
            block = reader.account(_single_resource(reader.file))
            if block is not None:
                yield block
        except JsonStreamError as err:
            reason = RECORD_TOO_LARGE if isinstance(err, RecordTooLarge) else INVALID_JSON
            head, size = document.rest()
            raw = escape_raw(head.encode("utf-8", "surrogateescape"))
            note = f" [{err} at character {err.position:,}; {size:,} characters from here]"
            reader.reject(position + 1, reason, raw + note)
        block = reader.account(Parsed(buffer.take(), new_fields=new))
        if block is not None:
            yield block
        document.rest()  # read to the end, so that the whole file is hashed
        reader.finish(document.sha256())


class _NotABundle(Exception):
    """The document is not an object with an `entry` array."""


def _entries(document: JsonDocument) -> Iterator[tuple[int, JsonValue]]:
    """The elements of the document's top-level `entry` array, numbered from 1."""
    if document.peek() != "{":
        raise _NotABundle
    document.take("{")
    seen_entries = False
    position = 0
    if document.peek() == "}":
        document.take("}")
    else:
        while True:
            key = document.value()
            if not isinstance(key.value, str):
                raise JsonStreamError("an object key is not a string", key.position)
            document.take(":")
            if key.value == "entry" and document.peek() == "[":
                seen_entries = True
                document.take("[")
                if document.peek() == "]":
                    document.take("]")
                else:
                    while True:
                        position += 1
                        yield position, document.value()
                        if document.take(",]") == "]":
                            break
            else:
                document.value()
            if document.take(",}") == "}":
                break
    if document.peek():
        raise JsonStreamError("data after the end of the document", document.position)
    if not seen_entries:
        raise _NotABundle


def _judge_entry(entry: JsonValue) -> tuple[Row, list[str], str] | Reject:
    """A Bundle entry's resource: its row, new fields and text, or why it is refused."""
    raw = escape_raw(entry.text.encode("utf-8", "surrogateescape"))
    if not isinstance(entry.value, dict):
        return Reject(0, NOT_AN_OBJECT, raw)
    resource = entry.value.get("resource")
    text = _member_text(entry.text, "resource")
    if resource is None or text is None:
        return Reject(0, NO_RESOURCE, raw)
    try:
        return (*judge_text(text, resource), text)
    except _Refused as refused:
        return Reject(0, refused.reason, raw)


def _member_text(text: str, key: str) -> str | None:
    """The exact text of member `key` of the JSON object `text` (the last, when repeated)."""
    found = None
    position = _skip(text, 0)
    if text[position : position + 1] != "{":
        return None
    position = _skip(text, position + 1)
    while position < len(text) and text[position] != "}":
        name, end = DECODER.raw_decode(text, position)
        position = _skip(text, end) + 1  # past the colon
        start = _skip(text, position)
        _, end = DECODER.raw_decode(text, start)
        if name == key:
            found = text[start:end]
        position = _skip(text, end)
        if text[position : position + 1] == ",":
            position = _skip(text, position + 1)
    return found


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _single_resource(file: LandedFile) -> Parsed:
    """A .json file that is not a Bundle: one record, read whole when small enough."""
    buffer = _RowBuffer()
    if file.size_bytes > MAX_RECORD_BYTES:
        with file.path.open("rb") as stream:
            head = stream.read(KEPT_HEAD_BYTES)
        note = f" [record of {file.size_bytes:,} bytes cut to its first {len(head):,}]"
        return Parsed(buffer.take(), [Reject(1, RECORD_TOO_LARGE, escape_raw(head) + note)])
    raw = file.path.read_bytes().removeprefix(BOM).rstrip(b"\r\n")
    try:
        judged = judge_line(raw)
    except _Refused as refused:
        return Parsed(buffer.take(), [Reject(1, refused.reason, escape_raw(raw))])
    if judged is None:
        return Parsed(buffer.take())
    row, fields, text = judged
    buffer.add(row, text, 1)
    return Parsed(buffer.take(), new_fields=set(fields))


def column_hints(columns: tuple[str, ...]) -> dict[str, TColumnSchema]:
    """The dlt hints of a part's columns."""
    return {name: COLUMN_HINTS[name].copy() for name in columns}
