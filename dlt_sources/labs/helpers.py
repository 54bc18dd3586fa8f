"""FHIR R4 Observations read from NDJSON and Bundle files into the raw table's shape.

What the `labs` resource (`__init__.py`) calls; the reading itself is split by concern:

- `observation`: one resource judged field by field (the exact path), and why
  a record is refused;
- `arrow`: the fast path, a block of lines read by Arrow on whole columns;
- `blocks`: which path a block of lines takes: fast where it is provably right,
  halved down to the exact path where it is not;
- `parsed`: the shape both paths yield (`Parsed`), and `RowBuffer`;
- `reader`: a file's runs counted, rendered as CSV blocks, its hash checked;
- `bundles`: a Bundle (`*.json`) streamed entry by entry.

Both paths give the same result for a line the fast path accepts: the exact
one only checks the types of the fields it extracts, all of which Arrow's
schema pins. Numbers are read as doubles on both paths.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from dlt.common.schema.typing import TColumnSchema

from dlt_sources._common.jsonlines import JsonLinesFile
from dlt_sources._common.parts import Block
from dlt_sources.files import FileBatch, LandedFile
from dlt_sources.labs.bundles import bundle_blocks
from dlt_sources.labs.parsed import Parsed
from dlt_sources.labs.reader import FileReader
from dlt_sources.labs.settings import BUNDLE_GLOB, COLUMN_HINTS, IN_FLIGHT, WORKERS


def observation_blocks(files: list[LandedFile], batch: FileBatch, load_id: str) -> Iterator[Block]:
    """The files' loadable Observations as CSV blocks; counts and rejects go to `batch`.

    NDJSON blocks are parsed and rendered by a few threads (Arrow and the CSV writer
    release the GIL) while this one reads on; results are counted in file order.

    Args:
        files: the load's files, NDJSON or Bundles (BUNDLE_GLOB), in load order.
        batch: where each file's rows, rejects, blank lines and new fields are counted.
        load_id: dlt's load id, written into every row.

    Yields:
        CSV blocks of rows in the raw table's COLUMNS, file by file.

    Raises:
        FileChangedError: a file changed while it was read; nothing of the load may stay.
    """
    pending: deque[tuple[FileReader, Future[list[tuple[Parsed, Block | None]]] | str]]
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
                reader = FileReader(file, batch, load_id)
                if file.path.match(BUNDLE_GLOB):
                    yield from ready(0)
                    yield from bundle_blocks(reader)
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


def column_hints(columns: tuple[str, ...]) -> dict[str, TColumnSchema]:
    """The dlt hints of a part's columns.

    Args:
        columns: the columns of a CSV part, as `PartWriter` wrote them.

    Returns:
        A copy of each column's entry of COLUMN_HINTS.
    """
    return {name: COLUMN_HINTS[name].copy() for name in columns}
