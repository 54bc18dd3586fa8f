"""FHIR Bundles (`*.json`) streamed entry by entry into the raw table's shape.

A Bundle may be one line of any size, so it is never read whole: the document
is walked as a stream (`JsonDocument`), each element of its top-level `entry`
array judged on the exact path (`observation`) as soon as it is read.
`_source_line` is then the entry's position in `Bundle.entry` (1-based). A
break in the JSON quarantines the rest of the file as one record; a `.json`
file that is not a Bundle is read as a single resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dlt_sources._common.csvfile import escape_raw
from dlt_sources._common.jsonlines import (
    BOM,
    DECODER,
    KEPT_HEAD_BYTES,
    MAX_RECORD_BYTES,
    JsonDocument,
    JsonStreamError,
    JsonValue,
    RecordTooLarge,
)
from dlt_sources._common.parts import Block
from dlt_sources.files import LandedFile, Reject
from dlt_sources.labs.observation import Refused, Row, judge_line, judge_text
from dlt_sources.labs.parsed import Parsed, RowBuffer
from dlt_sources.labs.reader import FileReader
from dlt_sources.labs.settings import (
    EXACT_FLUSH_ROWS,
    INVALID_JSON,
    NO_RESOURCE,
    NOT_AN_OBJECT,
    RECORD_TOO_LARGE,
)

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # between JSON tokens


def bundle_blocks(reader: FileReader) -> Iterator[Block]:
    """A Bundle's entries, streamed; a break in the JSON quarantines the rest as one record.

    Args:
        reader: the file's reader, which counts every entry and checks the file's hash.

    Yields:
        The loadable entries as CSV blocks of up to EXACT_FLUSH_ROWS rows.

    Raises:
        FileChangedError: the file changed while it was read (from `reader.finish`).
    """
    buffer = RowBuffer()
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
    except Refused as refused:
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
    buffer = RowBuffer()
    if file.size_bytes > MAX_RECORD_BYTES:
        with file.path.open("rb") as stream:
            head = stream.read(KEPT_HEAD_BYTES)
        note = f" [record of {file.size_bytes:,} bytes cut to its first {len(head):,}]"
        return Parsed(buffer.take(), [Reject(1, RECORD_TOO_LARGE, escape_raw(head) + note)])
    raw = file.path.read_bytes().removeprefix(BOM).rstrip(b"\r\n")
    try:
        judged = judge_line(raw)
    except Refused as refused:
        return Parsed(buffer.take(), [Reject(1, refused.reason, escape_raw(raw))])
    if judged is None:
        return Parsed(buffer.take())
    row, fields, text = judged
    buffer.add(row, text, 1)
    return Parsed(buffer.take(), new_fields=set(fields))
