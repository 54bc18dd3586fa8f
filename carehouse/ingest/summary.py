"""What one load of landed files did: counts only, never row content."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

FileStatus = Literal["loaded", "rejected", "skipped"]


@dataclass(frozen=True)
class FileSummary:
    """One landed file: loaded, rejected as a whole (quarantined), or skipped as already seen."""

    name: str
    sha256: str
    size_bytes: int
    status: FileStatus
    received: int = 0
    loaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    blank_lines: int = 0
    new_columns: tuple[str, ...] = ()
    note: str | None = None  # why rejected, or which file it duplicates


@dataclass(frozen=True)
class LoadSummary:
    """Records received = loaded + quarantined, per reason, over the files this load read."""

    source: str
    received: int
    loaded: int
    quarantined: dict[str, int]
    skipped_files: list[str]
    new_columns: list[str]
    files: list[FileSummary]
    load_id: str | None = None
    seconds: float = 0.0

    @classmethod
    def of(
        cls, source: str, files: list[FileSummary], load_id: str | None, seconds: float
    ) -> LoadSummary:
        """Totals over the per-file summaries."""
        read = [f for f in files if f.status != "skipped"]
        quarantined: Counter[str] = Counter()
        for summary in read:
            quarantined.update(summary.quarantined)
        return cls(
            source=source,
            received=sum(f.received for f in read),
            loaded=sum(f.loaded for f in read),
            quarantined=dict(sorted(quarantined.items())),
            skipped_files=[f.name for f in files if f.status == "skipped"],
            new_columns=sorted({c for f in read for c in f.new_columns}),
            files=files,
            load_id=load_id,
            seconds=seconds,
        )

    @property
    def quarantined_total(self) -> int:
        """Records quarantined, whatever the reason."""
        return sum(self.quarantined.values())

    @property
    def rejected_files(self) -> dict[str, str]:
        """Files quarantined as a whole, and why."""
        return {f.name: f.note or "" for f in self.files if f.status == "rejected"}

    def one_line(self) -> str:
        """A one-line account for logs and the run summary."""
        read = len(self.files) - len(self.skipped_files)
        text = (
            f"{self.source}: {read} files read, {len(self.skipped_files)} skipped (already loaded);"
            f" {self.received:,} records received, {self.loaded:,} loaded,"
            f" {self.quarantined_total:,} quarantined"
        )
        if self.quarantined:
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in self.quarantined.items())
            text += f" ({reasons})"
        if self.rejected_files:
            text += f"; files rejected: {', '.join(self.rejected_files)}"
        if self.new_columns:
            text += f"; new columns: {', '.join(self.new_columns)}"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: totals first (`received`, `loaded`, `quarantined`, `skipped`)."""
        return {
            "source": self.source,
            "received": self.received,
            "loaded": self.loaded,
            "quarantined": self.quarantined_total,
            "skipped": len(self.skipped_files),
            "quarantined_by_reason": self.quarantined,
            "skipped_files": self.skipped_files,
            "rejected_files": self.rejected_files,
            "new_columns": self.new_columns,
            "load_id": self.load_id,
            "seconds": round(self.seconds, 3),
            "files": [asdict(f) for f in self.files],
        }
