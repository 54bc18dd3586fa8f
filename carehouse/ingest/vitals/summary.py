"""What one drain did: counts only, never message content."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DrainSummary:
    """What one drain did: messages received = loaded + quarantined + skipped."""

    source: str
    topic: str
    mode: Literal["single", "scale-out"]
    drain_id: str
    received: int = 0
    loaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # behind the database's offsets (already loaded), or no longer ours
    messages_with_new_fields: int = 0
    new_fields: dict[str, int] = field(default_factory=dict)  # field -> messages carrying it
    batches: int = 0
    fenced_batches: int = 0  # rolled back because another worker moved the partition on
    rejected_by_database: int = 0
    caught_up: bool = False
    positions: dict[int, int] = field(default_factory=dict)  # next offset per partition owned
    seconds: float = 0.0

    @property
    def quarantined_total(self) -> int:
        """Messages dead-lettered, whatever the reason."""
        return sum(self.quarantined.values())

    def one_line(self) -> str:
        """A one-line account for logs and the run summary (counts only, no content)."""
        rate = self.received / self.seconds if self.seconds else 0.0
        text = (
            f"{self.source}: {self.received:,} messages received from {self.topic},"
            f" {self.loaded:,} loaded, {self.quarantined_total:,} quarantined"
        )
        if self.quarantined:
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in self.quarantined.items())
            text += f" ({reasons})"
        text += (
            f", {self.skipped:,} skipped; {self.batches:,} batches in {self.seconds:.1f}s"
            f" ({rate:,.0f} messages/s)"
        )
        if self.caught_up:
            text += "; caught up"
        if self.new_fields:
            names = ", ".join(f"{name} ({count:,})" for name, count in self.new_fields.items())
            text += f"; {self.messages_with_new_fields:,} messages with new fields: {names}"
        if self.fenced_batches:
            text += f"; {self.fenced_batches} batches fenced (another worker got there first)"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: totals first (`received`, `loaded`, `quarantined`, `skipped`)."""
        return {
            "source": self.source,
            "received": self.received,
            "loaded": self.loaded,
            "quarantined": self.quarantined_total,
            "skipped": self.skipped,
            "quarantined_by_reason": self.quarantined,
            "messages_with_new_fields": self.messages_with_new_fields,
            "new_fields": self.new_fields,
            "topic": self.topic,
            "mode": self.mode,
            "drain_id": self.drain_id,
            "batches": self.batches,
            "fenced_batches": self.fenced_batches,
            "rejected_by_database": self.rejected_by_database,
            "caught_up": self.caught_up,
            "positions": {str(p): offset for p, offset in sorted(self.positions.items())},
            "seconds": round(self.seconds, 3),
        }
