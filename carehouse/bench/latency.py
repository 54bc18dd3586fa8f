"""Vitals latency: produce at a set rate, record when each message shows in raw and in gold.

Three processes work while this one polls: the stream (`carehouse demo vitals
--rate N --duration S`, which stamps every message with the broker timestamp
of its production), and the gold refresher (drain until caught up, then
`dbt run` of the stream's models, over and over). The poller records, per
message, the first poll whose snapshot holds it: in `raw_vitals.vitals`, keyed
by its Kafka coordinates, and, for the ones that raise an alert, in
`gold.news2_alerts`, matched back to their raw row by device and observation
time. Latency = that snapshot's wall time - the production timestamp, one
clock (same machine), polled every `POLL_SECONDS`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from carehouse.bench.context import run_environment
from carehouse.database import connect
from carehouse.settings import Settings
from dlt_sources.vitals.settings import (
    DATASET,
    DEAD_LETTER_TABLE,
    PARTITIONS,
    QUARANTINE_SCHEMA,
    TABLE,
)

POLL_SECONDS = 0.25
STREAM_MODELS = ["fct_vitals", "news2_alerts"]
PERCENTILES = (50, 95, 99)
SETTLE_SECONDS = 300.0  # after the stream ends: time allowed for the last messages to show


def refresh_gold(settings: Settings) -> int:
    """One micro-batch: drain the topic until caught up, then rebuild the stream's gold models.

    SWITCH POINT for the Prefect `vitals` flow (branch `orch`, flows/vitals.py): at merge
    this body becomes `return vitals(until_caught_up=True).loaded` (`from flows.vitals
    import vitals`): the flow drains until caught up and refreshes its gold chain whenever
    the committed offsets moved, so each cycle here is one flow run, as deployed.
    """
    from carehouse.ingest.vitals import drain_vitals
    from carehouse.transform import run_dbt

    drained = drain_vitals(settings, until_caught_up=True).received
    run_dbt(settings, ["run", "--select", *STREAM_MODELS])
    return drained


def refresher_main(argv: Sequence[str]) -> int:
    """`python -m carehouse.bench.latency STOP_FILE PROGRESS_FILE`: refresh until told to stop.

    Each finished cycle appends one JSON line (wall start, wall end, messages drained).
    """
    stop, progress = Path(argv[0]), Path(argv[1])
    settings = Settings()
    while not stop.exists():
        started = time.time()
        drained = refresh_gold(settings)
        line = {"started": started, "finished": time.time(), "drained": drained}
        with progress.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
    return 0


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 (None when nothing was measured)."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for p in PERCENTILES:
        result[f"p{p}"] = (
            ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None
        )
    return result


@dataclass
class _Poller:
    """What has become visible so far, and when."""

    topic: str
    since: datetime
    next_offsets: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    produced_at: dict[tuple[str, datetime], float] = field(default_factory=dict)
    raw: list[float] = field(default_factory=list)
    alerts_seen: set[str] = field(default_factory=set)
    alerts: list[float] = field(default_factory=list)
    unmatched_alerts: int = 0

    def poll(self, conn: psycopg.Connection) -> None:
        snapshot = time.time()
        rows = conn.execute(
            sql.SQL(
                "select v.kafka_partition, v.kafka_offset, v.kafka_timestamp, v.device_id,"
                " v.observed_at from {} as v join unnest(%s::integer[], %s::bigint[])"
                " as seen (part, next_offset) on v.kafka_partition = seen.part"
                " and v.kafka_offset >= seen.next_offset where v.kafka_topic = %s"
            ).format(sql.Identifier(DATASET, TABLE)),
            (list(range(PARTITIONS)), self.next_offsets, self.topic),
        ).fetchall()
        for partition, offset, stamp, device, observed in rows:
            produced = stamp.timestamp()
            self.raw.append(snapshot - produced)
            self.next_offsets[partition] = max(self.next_offsets[partition], offset + 1)
            key = (device, observed)
            self.produced_at[key] = min(produced, self.produced_at.get(key, produced))
        exists = conn.execute("select to_regclass('gold.news2_alerts') is not null").fetchone()
        if not (exists and exists[0]):
            return  # a full refresh dropped the view; the next stream refresh makes it again
        alerts = conn.execute(
            "select observation_set_id, device_id, observed_at from gold.news2_alerts"
            " where observed_at >= %s",
            (self.since,),
        ).fetchall()
        for set_id, device, observed in alerts:
            if set_id in self.alerts_seen:
                continue
            self.alerts_seen.add(set_id)
            produced_at = self.produced_at.get((device, observed))
            if produced_at is None:
                self.unmatched_alerts += 1  # its raw row is not ours (or not seen): say so
            else:
                self.alerts.append(snapshot - produced_at)

    def dead_letters(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            sql.SQL("select count(*) from {} where kafka_topic = %s").format(
                sql.Identifier(QUARANTINE_SCHEMA, DEAD_LETTER_TABLE)
            ),
            (self.topic,),
        ).fetchone()
        return int(row[0]) if row else 0


def _cycles(progress: Path) -> list[dict[str, float]]:
    if not progress.exists():
        return []
    return [json.loads(line) for line in progress.read_text().splitlines() if line]


def _sent(stream: subprocess.Popen[str]) -> int:
    output, _ = stream.communicate()
    if stream.returncode != 0:
        raise RuntimeError(f"vitals stream failed (exit {stream.returncode}):\n{output[-2000:]}")
    # "streamed 1,234 vital-sign messages to <topic>"
    for line in output.splitlines():
        if line.startswith("streamed "):
            return int(line.split()[1].replace(",", ""))
    raise RuntimeError(f"vitals stream printed no count:\n{output[-2000:]}")


def measure_latency(
    settings: Settings, *, rate: float, seconds: float, work_dir: Path
) -> dict[str, Any]:
    """Stream `rate` msg/s for `seconds` into this run's topic; latency to raw and to alerts."""
    from carehouse.ingest.vitals import ensure_topic

    ensure_topic(settings)
    work_dir.mkdir(parents=True, exist_ok=True)
    stop, progress = work_dir / "stop", work_dir / "cycles.jsonl"
    stop.unlink(missing_ok=True)
    progress.unlink(missing_ok=True)
    env = run_environment(settings)
    with (work_dir / "refresher.log").open("w") as log:
        refresher = subprocess.Popen(
            [sys.executable, "-m", "carehouse.bench.latency", str(stop), str(progress)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        with connect(settings, "admin", autocommit=True) as conn:
            now = conn.execute("select now()").fetchone()
            assert now is not None
            poller = _Poller(settings.vitals_topic, since=now[0])
            stream = subprocess.Popen(
                [sys.executable, "-m", "carehouse.cli", "demo", "vitals", "--rate", str(rate),
                 "--duration", str(seconds), "--seed", "7"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            started = time.monotonic()
            while stream.poll() is None:
                poller.poll(conn)
                time.sleep(POLL_SECONDS)
            stream_seconds = time.monotonic() - started
            sent = _sent(stream)
            caught_up, settled = _settle(conn, poller, sent, progress, refresher)
            dead = poller.dead_letters(conn)
    finally:
        stop.touch()
        try:
            refresher.wait(timeout=SETTLE_SECONDS)
        except subprocess.TimeoutExpired:
            refresher.kill()
            raise
    if refresher.returncode not in (0, None):
        raise RuntimeError(f"gold refresher failed; see {work_dir / 'refresher.log'}")
    cycles = _cycles(progress)
    durations = [c["finished"] - c["started"] for c in cycles]
    return {
        "rate_target": rate,
        # The stream paces itself over `seconds` from its own start (after its imports).
        "rate_achieved": sent / seconds,
        "stream_process_seconds": stream_seconds,
        "seconds": seconds,
        "sent": sent,
        "raw_rows": len(poller.raw),
        "dead_letters": dead,
        "all_accounted": caught_up,
        "gold_refreshed_after_last": settled,
        "raw": percentiles(poller.raw),
        "news2_alerts": percentiles(poller.alerts),
        "alerts": len(poller.alerts),
        "unmatched_alerts": poller.unmatched_alerts,
        "refresh_cycles": len(cycles),
        "refresh_cycle_seconds": percentiles(durations),
    }


def _settle(
    conn: psycopg.Connection,
    poller: _Poller,
    sent: int,
    progress: Path,
    refresher: subprocess.Popen[bytes],
) -> tuple[bool, bool]:
    """Poll until every message is in raw or dead letters and gold was refreshed after that.

    Returns (every message accounted for, a refresh ran after the last one); gives up
    after SETTLE_SECONDS, and the figures say which did not happen.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    accounted_at: float | None = None
    while time.monotonic() < deadline and refresher.poll() is None:
        poller.poll(conn)
        if accounted_at is None and len(poller.raw) + poller.dead_letters(conn) >= sent:
            accounted_at = time.time()
        if accounted_at is not None and any(
            c["started"] >= accounted_at for c in _cycles(progress)
        ):
            poller.poll(conn)
            return True, True
        time.sleep(POLL_SECONDS)
    return accounted_at is not None, False


if __name__ == "__main__":
    sys.exit(refresher_main(sys.argv[1:]))
