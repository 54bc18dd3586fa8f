"""One row per pipeline run in ``audit.pipeline_runs``, read by ``gold.pipeline_run_audit``.

A run writes its row when it starts (status ``running``) and rewrites it when it ends,
``succeeded`` or ``failed`` (then ``failed_step`` names the step: ``gate-gold``,
``build-silver``, ``load-labs`` ...). Every write sets ``recorded_at = now()``, the watermark
the incremental gold model reads. The table (defined in carehouse.audit.schema)
is created here or by dbt's on-run-start hook, whichever comes first: a run that fails before
dbt ever ran is still recorded.

Counts, gate outcomes, durations and freshness only: never row content.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from carehouse.audit.schema import ensure_pipeline_runs
from carehouse.core.database import connect
from carehouse.core.settings import Settings

Status = Literal["running", "succeeded", "failed"]


@dataclass
class RunRecord:
    """What a run has done so far; written whole at its start and at its end."""

    run_id: str
    business_date: date
    flow: str = "nightly"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    status: Status = "running"
    failed_step: str | None = None
    source_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    gate_outcomes: dict[str, str] = field(default_factory=dict)
    step_durations: dict[str, float] = field(default_factory=dict)
    gold_freshness: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; when it raises, the record names it as the failed step."""
        started = time.monotonic()
        try:
            yield
        except BaseException:
            # The first failure is the one that stopped the run: an outer step keeps it.
            if self.failed_step is None:
                self.failed_step = name
            raise
        finally:
            self.step_durations[name] = round(time.monotonic() - started, 3)

    def count(self, source: str, received: int, loaded: int, quarantined: int) -> None:
        """Rows of one source in this run."""
        self.source_rows[source] = {
            "received": received,
            "loaded": loaded,
            "quarantined": quarantined,
        }

    def finish(self, *, succeeded: bool) -> None:
        """Close the record; gates that never ran are reported ``not_run``."""
        self.finished_at = datetime.now(UTC)
        self.status = "succeeded" if succeeded else "failed"
        for layer in ("raw", "silver", "gold"):
            self.gate_outcomes.setdefault(layer, "not_run")


def ensure_table(settings: Settings) -> None:
    """Create ``audit.pipeline_runs`` when missing (as the transformer, who owns ``audit``)."""
    with connect(settings, "transformer") as conn:
        ensure_pipeline_runs(conn)


def write(settings: Settings, record: RunRecord) -> None:
    """Insert or replace the run's row (idempotent per run_id)."""
    ensure_table(settings)
    with connect(settings, "transformer") as conn, conn.transaction():
        conn.execute(
            """
            insert into audit.pipeline_runs (
                run_id, business_date, started_at, finished_at, status, failed_step,
                source_rows, gate_outcomes, step_durations, gold_freshness, recorded_at
            )
            values (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, now())
            on conflict (run_id) do update set
                business_date = excluded.business_date,
                started_at = excluded.started_at,
                finished_at = excluded.finished_at,
                status = excluded.status,
                failed_step = excluded.failed_step,
                source_rows = excluded.source_rows,
                gate_outcomes = excluded.gate_outcomes,
                step_durations = excluded.step_durations,
                gold_freshness = excluded.gold_freshness,
                recorded_at = now()
            """,
            (
                record.run_id,
                record.business_date,
                record.started_at,
                record.finished_at,
                record.status,
                record.failed_step,
                json.dumps(record.source_rows, sort_keys=True),
                json.dumps(record.gate_outcomes, sort_keys=True),
                json.dumps(record.step_durations, sort_keys=True),
                json.dumps(record.gold_freshness, sort_keys=True),
            ),
        )
