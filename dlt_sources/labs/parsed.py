"""What parsing a run of NDJSON lines or Bundle entries yields, whichever path read it.

Both paths hand on the same shape, `Parsed`: the loadable rows as one Arrow
record batch (the extracted columns, the resource's text and its line), beside
the rejects. The exact path judges records one at a time, so `RowBuffer`
gathers its rows into that shape; the fast path builds the batch on whole
columns itself. Rendering the CSV parts then never needs to know which path
read a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from dlt_sources._common.columns import SOURCE_LINE
from dlt_sources.files import Reject
from dlt_sources.labs.observation import Row
from dlt_sources.labs.settings import EXTRACTED_COLUMNS, NUMERIC_COLUMNS, RESOURCE


@dataclass
class Parsed:
    """A run of loadable Observations (with their text and line), and the rejects."""

    rows: pa.RecordBatch  # EXTRACTED_COLUMNS, RESOURCE, SOURCE_LINE
    rejects: list[Reject] = field(default_factory=list)
    new_fields: set[str] = field(default_factory=set)
    blank_lines: int = 0


class RowBuffer:
    """Rows of the exact path, gathered into record batches.

    Also the way to an empty batch of the right schema (`RowBuffer().take()`),
    for a run that has rejects or blank lines only.
    """

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.texts: list[str] = []
        self.lines: list[int] = []

    def add(self, row: Row, text: str, line: int) -> None:
        """Keep one judged record.

        Args:
            row: its EXTRACTED_COLUMNS.
            text: the resource's JSON text, stored whole.
            line: its line in the file (its position in `Bundle.entry` for a Bundle).
        """
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
