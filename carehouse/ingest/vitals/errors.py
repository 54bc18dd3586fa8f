"""How a drain stops rather than lose or repeat a message, and how a batch is rolled back."""

from __future__ import annotations


class DrainError(RuntimeError):
    """The drain cannot go on without losing or repeating messages; it stopped instead."""


class Fenced(Exception):
    """Another worker moved a partition on since this batch started: it was rolled back."""


class SlowBatch(DrainError):
    """A batch's transaction stayed open too long to commit: it was rolled back.

    Its rows would carry an ``_ingested_at`` (the transaction's start) older than the vitals
    stream's lookback covers by the time they became visible, so a stream refresh could
    miss them. The drain fails loudly instead; the batch is drained again on restart.
    """
