"""A block of NDJSON lines parsed by the cheapest path that is provably right for it.

The fast path (`arrow.parse_fast`) is tried first. A block it refuses is halved
until the halves pass, down to runs of at most EXACT_LINES lines that are read
line by line (`parse_exact`), so that one bad line costs the exact path only for
its neighbours, and the reject names what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator

from dlt_sources._common.csvfile import escape_raw
from dlt_sources.files import Reject
from dlt_sources.labs.arrow import parse_fast
from dlt_sources.labs.observation import Refused, judge_line
from dlt_sources.labs.parsed import Parsed, RowBuffer
from dlt_sources.labs.settings import EXACT_LINES


def parse_exact(chunk: bytes, first_line: int) -> Parsed:
    """A block of lines read one by one: the exact path.

    Args:
        chunk: whole NDJSON lines, the last one with or without its line end.
        first_line: the file's line number of the block's first line.

    Returns:
        The block's loadable rows, a reject naming the reason for every other
        line that is not blank, the new fields and the count of blank lines.
    """
    buffer = RowBuffer()
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
        except Refused as refused:
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
    """A block of lines: fast where Arrow can be trusted, line by line where it cannot.

    Args:
        chunk: whole NDJSON lines, the last one with or without its line end.
        first_line: the file's line number of the block's first line.

    Yields:
        Runs of the block in line order, together covering every line once.
    """
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
