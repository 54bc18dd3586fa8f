"""Landed files: finding them, fingerprinting them, and recording what became of each."""

from __future__ import annotations

import csv
import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that cannot be loaded, and why."""

    line: int
    reason: str
    raw: str  # the record's text, undecodable bytes as \\x.. escapes, no line terminator


class FileChangedError(RuntimeError):
    """A landed file's bytes differ from the ones fingerprinted before the load."""


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing folder, identified by its content."""

    path: Path
    sha256: str
    size_bytes: int

    @property
    def name(self) -> str:
        """The file name, as recorded in the ledger (and in labs raw rows, `_source_file`)."""
        return self.path.name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def discover(path: Path, pattern: str | tuple[str, ...]) -> list[LandedFile]:
    """The files at `path` (one file, or a folder's files matching a pattern), sorted by name."""
    patterns = (pattern,) if isinstance(pattern, str) else pattern
    if path.is_file():
        paths = [path]
    elif path.is_dir():
        paths = sorted({p for glob in patterns for p in path.glob(glob) if p.is_file()})
    else:
        raise FileNotFoundError(f"no landing file or folder at {path}")
    return [LandedFile(p, sha256_of(p), p.stat().st_size) for p in paths]


@dataclass
class FileOutcome:
    """What became of one file's records."""

    file: LandedFile
    received: int = 0
    loaded: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    blank_lines: int = 0
    new_columns: tuple[str, ...] = ()
    rejected: str | None = None  # why the whole file went to quarantine

    @property
    def quarantined_total(self) -> int:
        """Records quarantined, whatever the reason."""
        return sum(self.quarantined.values())


SPOOL_FIELDS = ("source_file", "source_line", "source_hash", "reason", "raw_line")


class FileBatch:
    """The files of one load and what became of them, filled in while they are read.

    Rejected records are spooled to a CSV file in `work_dir` rather than held in
    memory: a broken file may reject millions. `file_ids` holds each file's key in
    the ledger (by content hash), allocated before the rows that carry it are read.
    """

    def __init__(
        self,
        files: Iterable[LandedFile],
        work_dir: Path,
        ingested_at: datetime,
        file_ids: Mapping[str, int],
    ) -> None:
        self.files = list(files)
        self.work_dir = work_dir
        self.ingested_at = ingested_at
        self.file_ids = dict(file_ids)
        self.outcomes = {f.sha256: FileOutcome(f) for f in self.files}
        self.spool_path = work_dir / "rejects.csv"
        self._spool: TextIO = self.spool_path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._spool)
        self._lock = threading.Lock()  # files may be read in parallel (dlt_sources._common.ahead)

    def outcome(self, file: LandedFile) -> FileOutcome:
        """The outcome record of one file of the batch."""
        return self.outcomes[file.sha256]

    def file_id(self, file: LandedFile) -> int:
        """The file's key in the ledger, which its raw rows carry as `_source_file_id`."""
        return self.file_ids[file.sha256]

    def count(self, file: LandedFile, loaded: int, rejects: list[Reject]) -> None:
        """Account for a run of records of `file`: `loaded` rows and the `rejects`."""
        outcome = self.outcomes[file.sha256]
        with self._lock:
            outcome.loaded += loaded
            outcome.received += loaded + len(rejects)
            for reject in rejects:
                outcome.quarantined[reject.reason] += 1
                self._writer.writerow(
                    (file.name, reject.line, file.sha256, reject.reason, reject.raw)
                )

    def close_spool(self) -> None:
        """Flush the rejects; call once all files are read (again: no effect)."""
        self._spool.close()

    def spooled_rejects(self) -> Iterator[tuple[str, int, str, str, str]]:
        """The rejected records, in the order they were found (per file)."""
        with self.spool_path.open(encoding="utf-8", newline="") as stream:
            for name, line, sha256, reason, raw in csv.reader(stream):
                yield name, int(line), sha256, reason, raw
