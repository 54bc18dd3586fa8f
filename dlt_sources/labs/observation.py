"""Judging one Observation at a time: the exact path, and the reference for the fast one.

A resource is checked field by field with Python's json module's output: every
field taken out of it must have FHIR's JSON type, or the resource is refused
with a reason naming the field. The text is checked as well for what Postgres
jsonb refuses although JSON parsers take it. This module is what the fast path
(`arrow`) must agree with, line for line; it uses no Arrow itself, so that a
Bundle entry and an NDJSON line are judged by the same code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dlt_sources._common.jsonlines import DECODER
from dlt_sources.labs.settings import (
    COMPONENT,
    INVALID_JSON,
    INVALID_UNICODE,
    INVALID_UTF8,
    LOINC_SYSTEM,
    MAX_DEPTH,
    MISSING_ID,
    NESTING_TOO_DEEP,
    NO_VALUE,
    NOT_AN_OBJECT,
    NOT_AN_OBSERVATION,
    NUL_CHARACTER,
    NUMERIC_LIMIT,
    OBSERVATION_ELEMENTS,
    OUT_OF_RANGE,
    VALUE_TYPES,
    WRONG_TYPE,
)

# What Postgres jsonb refuses although JSON parsers take it: a NUL escape and a lone
# UTF-16 surrogate escape (Arrow refuses the latter itself), NaN and Infinity (Python's
# parser is told to refuse them, Arrow's output is checked for them).
_ESCAPES_TO_CHECK = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte, after surrogateescape

Row = tuple[Any, ...]  # the EXTRACTED_COLUMNS of one Observation


class Refused(Exception):
    """A record that cannot be loaded, and why (the quarantine reason).

    Raised rather than returned so that the checks deep in `extract` can stop at
    the first field that is wrong; every caller turns it into a `Reject`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _typed(parent: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    """parent[key], None when absent or null, refused when of another JSON type."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise Refused(f"{WRONG_TYPE}:{path}")
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
        raise Refused(f"{WRONG_TYPE}:{path}")
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
        raise Refused(f"{OUT_OF_RANGE}:{path}") from None
    if not abs(number) < NUMERIC_LIMIT:
        raise Refused(f"{OUT_OF_RANGE}:{path}")
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
            raise Refused(f"{WRONG_TYPE}:{path}.coding")
        value = _text(coding, key, f"{path}.coding.{key}")
        if value is not None and (wanted is None or value == wanted):
            return coding
    return None


def extract(resource: object) -> tuple[Row, list[str]]:
    """An Observation's extracted columns and its non-FHIR fields.

    Args:
        resource: the parsed JSON of one resource.

    Returns:
        The EXTRACTED_COLUMNS of the Observation, and its top-level fields that
        FHIR R4 does not define (see `new_fields`).

    Raises:
        Refused: not an Observation object, no id, or an extracted field of
            another JSON type than FHIR's or out of numeric's range.
    """
    if not isinstance(resource, dict):
        raise Refused(NOT_AN_OBJECT)
    if resource.get("resourceType") != "Observation":
        raise Refused(NOT_AN_OBSERVATION)
    identifier = resource.get("id")
    if identifier is None or identifier == "":
        raise Refused(MISSING_ID)
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


def is_new_field(name: str) -> bool:
    """True for a top-level field FHIR R4 does not define for an Observation.

    Args:
        name: a top-level field name; `_name` (a primitive's extension) counts as `name`.
    """
    return name not in OBSERVATION_ELEMENTS and not (
        name.startswith("_") and name[1:] in OBSERVATION_ELEMENTS
    )


def new_fields(resource: dict[str, Any]) -> list[str]:
    """Top-level fields (not null) that FHIR R4 does not define for an Observation.

    Args:
        resource: the parsed JSON object of an Observation.

    Returns:
        The names, in the resource's order.
    """
    return [key for key, value in resource.items() if value is not None and is_new_field(key)]


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
    """Checks that need the resource's text, then `extract`.

    Args:
        text: the resource's JSON text, as it will be stored.
        parsed: that text parsed.

    Returns:
        What `extract` returns.

    Raises:
        Refused: an undecodable byte, nesting deeper than jsonb takes, a NUL or
            lone surrogate in a string, or whatever `extract` refuses.
    """
    if _ESCAPED_BYTE.search(text):
        raise Refused(INVALID_UTF8)
    if _too_deep(text, parsed):
        raise Refused(NESTING_TOO_DEEP)
    if _ESCAPES_TO_CHECK.search(text):
        reason = _unstorable(parsed)
        if reason:
            raise Refused(reason)
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
    """One NDJSON line judged: its row, new fields and text.

    Args:
        raw: the line's bytes, without its LF (a CR before it is dropped here).

    Returns:
        The row and new fields (see `extract`) and the line's text, or None for
        a blank line.

    Raises:
        Refused: the line is not UTF-8, not JSON, or refused by `judge_text`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(INVALID_UTF8) from None
    text = text.rstrip("\r")  # a CR LF line end (the LF is gone already)
    if not text.strip(" \t\r\n"):
        return None
    try:
        parsed = DECODER.decode(text)
    except RecursionError:
        raise Refused(NESTING_TOO_DEEP) from None
    except ValueError:  # JSONDecodeError, or NaN / Infinity
        raise Refused(INVALID_JSON) from None
    row, new = judge_text(text, parsed)
    return row, new, text
