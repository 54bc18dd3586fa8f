"""Landed JSON files streamed in bounded memory: NDJSON in line blocks, one document by members.

Source-agnostic. Line numbers are physical: a line ends with a line feed (CR LF
counts as one), the first line is 1. A UTF-8 byte-order mark at the start of a
file is dropped. Memory is bounded by the block size and `max_record_bytes`: a
longer line (or document value) is not held but reported with its first bytes.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_BYTES = 8 << 20
MAX_RECORD_BYTES = 64 << 20
# Of a record too large to hold, this much is kept for the quarantine.
KEPT_HEAD_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Whole lines of a file: `data` ends with a line feed unless it is the file's end."""

    data: bytes
    first_line: int


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than the reader holds: its number, first bytes and full size."""

    line: int
    head: bytes
    size: int


class _HashedFile:
    """A binary file read in blocks, hashing what it reads.

    The hashing runs on a thread of its own (hashlib releases the GIL), in read order,
    so that it does not hold up the reader.
    """

    def __init__(self, path: Path, block_bytes: int) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self._file: BinaryIO = path.open("rb")
        self._digest = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._hashed: Future[None] | None = None
        self._first = True

    def read(self) -> bytes:
        """The next block ('' at the end); a byte-order mark at the very start is dropped."""
        block = self._file.read(max(self.block_bytes, len(BOM) if self._first else 1))
        if self._hashed is not None:
            self._hashed.result()  # one block hashing at a time: memory stays bounded
        self._hashed = self._hasher.submit(self._digest.update, block)
        if self._first:
            self._first = False
            block = block.removeprefix(BOM)
        return block

    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far: of the whole file once it is read to the end."""
        if self._hashed is not None:
            self._hashed.result()  # one thread, in order: the last block hashed means all were
        return self._digest.hexdigest()

    def close(self) -> None:
        self._file.close()
        self._hasher.shutdown()


class JsonLinesFile:
    """One NDJSON file: iterate `blocks()` once, then check `sha256()`."""

    def __init__(
        self,
        path: Path,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self._file = _HashedFile(path, block_bytes)
        self.max_record_bytes = max_record_bytes

    def __enter__(self) -> JsonLinesFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    def sha256(self) -> str:
        """Hex SHA-256 of the file's bytes read so far."""
        return self._file.sha256()

    def blocks(self) -> Iterator[LineBlock | LongLine]:
        """The file as blocks of whole lines, and the lines too long to hold."""
        pending, line = b"", 1
        while True:
            block = self._file.read()
            if not block:
                if pending:
                    yield LineBlock(pending, line)
                return
            buf = pending + block if pending else block
            cut = buf.rfind(b"\n") + 1
            if cut:
                yield LineBlock(buf[:cut], line)
                line += buf.count(b"\n", 0, cut)
                pending = buf[cut:]
            else:
                pending = buf
            if len(pending) > self.max_record_bytes:
                long_line, pending = self._skip_long_line(pending, line)
                yield long_line
                line += 1

    def _skip_long_line(self, start: bytes, line: int) -> tuple[LongLine, bytes]:
        """Read past the rest of a line that is too long; its head, and the bytes after it."""
        size = len(start)
        while block := self._file.read():
            end = block.find(b"\n")
            if end >= 0:
                return LongLine(line, start[:KEPT_HEAD_BYTES], size + end + 1), block[end + 1 :]
            size += len(block)
        return LongLine(line, start[:KEPT_HEAD_BYTES], size), b""


# ---- one JSON document, member by member ------------------------------------------------


class JsonStreamError(ValueError):
    """The document is not valid JSON (or not the expected shape) from `position` on."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class RecordTooLarge(JsonStreamError):
    """A value is larger than the reader holds."""


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON, and Postgres rejects them in jsonb.
    raise ValueError(f"{name} is not valid JSON")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class JsonValue:
    """A value of the document: parsed, and its exact text."""

    value: object
    text: str
    position: int  # characters from the start of the document (after a BOM)


class JsonDocument:
    """One JSON document read as a stream of characters, a value at a time.

    Invalid UTF-8 bytes become lone surrogates (U+DC80..U+DCFF), so that the
    value holding them can be singled out rather than the whole file.
    """

    def __init__(
        self,
        path: Path,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self._file = _HashedFile(path, block_bytes)
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.max_record_bytes = max_record_bytes
        self._buf = ""
        self._pos = 0
        self._offset = 0  # document position of _buf[0]
        self._eof = False

    def __enter__(self) -> JsonDocument:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    def sha256(self) -> str:
        """Hex SHA-256 of the file's bytes read so far."""
        return self._file.sha256()

    @property
    def position(self) -> int:
        """Characters consumed from the start of the document."""
        return self._offset + self._pos

    def _fill(self) -> bool:
        """Read one more block; False at the end of the file."""
        if self._eof:
            return False
        block = self._file.read()
        self._eof = not block
        text = self._decoder.decode(block, final=self._eof)
        if not text:
            return not self._eof  # half a character read: the next block completes it
        # Positions held by a caller stay valid: the buffer only moves when it grows.
        if self._pos:
            self._offset += self._pos
            self._buf, self._pos = self._buf[self._pos :], 0
        self._buf += text
        return True

    def peek(self) -> str:
        """The next character that is not whitespace, without consuming it ('' at the end)."""
        while True:
            end = _WHITESPACE.match(self._buf, self._pos)
            self._pos = end.end() if end else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def take(self, expected: str) -> str:
        """Consume the next non-whitespace character, which must be one of `expected`."""
        char = self.peek()
        if not char or char not in expected:
            found = repr(char) if char else "the end of the file"
            raise JsonStreamError(f"expected one of {expected!r}, found {found}", self.position)
        self._pos += 1
        return char

    def value(self) -> JsonValue:
        """Parse the next value, reading more of the file as needed."""
        self.peek()
        while True:
            start = self._pos
            try:
                parsed, end = DECODER.raw_decode(self._buf, start)
            except (ValueError, RecursionError) as err:
                if not _cut_short(err, len(self._buf)):
                    raise JsonStreamError(_reason(err), self.position) from err
                if len(self._buf) - start > self.max_record_bytes:
                    raise RecordTooLarge(
                        "a value is larger than the reader holds", self.position
                    ) from err
                if self._fill():
                    continue
                raise JsonStreamError(_reason(err), self.position) from err
            # A number (or its exponent) may end where the buffer does: read on and retry.
            if end >= len(self._buf) - _MARGIN and self._fill():
                continue
            break
        text = self._buf[start:end]
        position = self._offset + start
        self._pos = end
        return JsonValue(parsed, text, position)

    def rest(self, limit: int = KEPT_HEAD_BYTES) -> tuple[str, int]:
        """The unread text's first `limit` characters and its size, reading to the end."""
        head = self._buf[self._pos : self._pos + limit]
        size = len(self._buf) - self._pos
        self._offset += len(self._buf)
        self._buf, self._pos = "", 0
        while self._fill():
            if len(head) < limit:
                head += self._buf[: limit - len(head)]
            size += len(self._buf)
            # Keep memory bounded: drop what has been counted.
            self._offset += len(self._buf)
            self._buf = ""
        return head, size


# A parse error this close to the end of the buffer may just mean the text was cut there
# (a truncated `Infinity` is 8 characters, the longest token but a string).
_MARGIN = 16


def _cut_short(err: BaseException, length: int) -> bool:
    """True when a decode error may come from the buffer ending inside the value."""
    if not isinstance(err, json.JSONDecodeError):
        return False  # NaN, nesting too deep: broken whatever follows
    return err.pos >= length - _MARGIN or err.msg.startswith("Unterminated string")


def _reason(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "nesting too deep"
    if isinstance(err, json.JSONDecodeError):
        return err.msg
    return str(err)
