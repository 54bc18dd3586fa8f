"""The fast path: a block of NDJSON lines read by Arrow, the extraction done on whole columns.

Arrow's JSON reader gets an explicit schema (`ARROW_SCHEMA`) for every field
taken out of a resource, so it refuses a block in which one of them has another
JSON type, or a line is not one JSON object; `parse_fast` then returns None and
the block goes to the exact path (`reader.parse_block`). A block that may hold
what Postgres jsonb refuses (a NUL escape, `NaN`, deep nesting) or that is not
valid UTF-8 is not tried. For every block it accepts, the result is the one the
exact path (`observation`) gives, which `tests/ingest/test_labs.py` checks.
"""

from __future__ import annotations

import struct

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from dlt_sources._common.columns import SOURCE_LINE
from dlt_sources._common.csvfile import escape_raw
from dlt_sources.files import Reject
from dlt_sources.labs.observation import is_new_field
from dlt_sources.labs.parsed import Parsed, RowBuffer
from dlt_sources.labs.settings import (
    ARROW_SAFE_DEPTH,
    COMPONENT,
    EXTRACTED_COLUMNS,
    LOINC_SYSTEM,
    MAX_DEPTH,
    MISSING_ID,
    NO_VALUE,
    NOT_AN_OBSERVATION,
    NUMERIC_LIMIT,
    OUT_OF_RANGE,
    RESOURCE,
    VALUE_TYPES,
)

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
    """A block of lines read by Arrow, or None when that cannot be trusted for this block.

    Args:
        chunk: whole NDJSON lines, the last one with or without its line end.
        first_line: the file's line number of the block's first line.

    Returns:
        The block's loadable rows and rejects (a reject here is a valid JSON
        object that is not a loadable Observation), or None: the block must be
        read by the exact path, which names what is wrong with each line.
    """
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
        return Parsed(RowBuffer().take(), blank_lines=blanks)
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
        and is_new_field(name)
        and pc.any(pc.and_(pc.is_valid(table[name]), loadable)).as_py()
    }
    arrays = [columns[name] for name in EXTRACTED_COLUMNS] + [texts, numbers]
    if not everything:
        arrays = [pc.filter(array, loadable) for array in arrays]
    rows = pa.RecordBatch.from_arrays(arrays, names=[*EXTRACTED_COLUMNS, RESOURCE, SOURCE_LINE])
    return Parsed(rows, rejects, new, blanks)
