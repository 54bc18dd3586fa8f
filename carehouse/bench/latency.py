"""Vitals latency of the deployed stream: the `vitals` flow, fed at a set rate.

Two processes work while this one polls: the `vitals` flow (`carehouse vitals`
in the foreground, as deployed: a drain thread for the whole run and an
in-process dbt session refreshing `tag:vitals_stream` whenever the committed
offsets move), and the stream (`carehouse demo vitals --rate N --duration S`,
which stamps every message with the broker timestamp of its production). The
producer starts only once the flow logged `vitals stream ready`, so the flow's
start-up (Prefect, dbt's parse) is not counted as latency. The poller records,
per message, the first poll whose snapshot holds it: in `raw_vitals.vitals`,
keyed by its Kafka coordinates, and, for the ones that raise an alert, in
`gold.news2_alerts`, matched back to their raw row by device and observation
time. Latency = that snapshot's wall time - the production timestamp, one clock
(same machine), polled every `POLL_SECONDS`. Once every sent message is in raw
or the dead letters, the flow gets SIGTERM: it stops its drain, refreshes gold
one last time and exits 0; polling goes on until it has exited, then once more.
"""

from __future__ import annotations

import math
import re
import signal
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

from carehouse.core.database import connect
from carehouse.core.environment import child_environment
from carehouse.core.settings import Settings
from carehouse.ingest.vitals.settings import (
    DATASET,
    DEAD_LETTER_TABLE,
    PARTITIONS,
    QUARANTINE_SCHEMA,
    TABLE,
)
from flows.vitals_process import (
    FLOW_LOGGING,
    log_tail,
    start_vitals_flow,
    wait_ready,
)

POLL_SECONDS = 0.25
PERCENTILES = (50, 95, 99)
SETTLE_SECONDS = 300.0  # after the stream ends: time allowed for the last messages to show
# The flow's last line, `VitalsSummary.one_line()` (printed by `carehouse vitals`).
SUMMARY = re.compile(
    r"vitals: ([\d,]+) messages loaded, ([\d,]+) quarantined, (\d+) gold refreshes"
    r" \(mean ([\d.]+)s\) in ([\d.]+)s"
)


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
    alerts_view_missing: int = 0  # polls that found no gold.news2_alerts

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
            self.alerts_view_missing += 1  # reported: alerts cannot show while it is gone
            return
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


def _sent(stream: subprocess.Popen[str]) -> int:
    output, _ = stream.communicate()
    if stream.returncode != 0:
        raise RuntimeError(f"vitals stream failed (exit {stream.returncode}):\n{output[-2000:]}")
    # "streamed 1,234 vital-sign messages to <topic>"
    for line in output.splitlines():
        if line.startswith("streamed "):
            return int(line.split()[1].replace(",", ""))
    raise RuntimeError(f"vitals stream printed no count:\n{output[-2000:]}")


def _flow_summary(log: Path) -> dict[str, Any]:
    """Refresh figures from the flow's summary line: a count and a mean, nothing finer."""
    found = SUMMARY.search(log.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"vitals flow printed no summary line:\n{log_tail(log)}")
    return {
        "flow_loaded": int(found[1].replace(",", "")),
        "flow_quarantined": int(found[2].replace(",", "")),
        "refresh_cycles": int(found[3]),
        "refresh_mean_seconds": float(found[4]),
        "flow_seconds": float(found[5]),
        "refresh_figures_from": "the vitals flow's summary line (count and mean only)",
    }


def measure_latency(
    settings: Settings, *, rate: float, seconds: float, work_dir: Path
) -> dict[str, Any]:
    """Stream `rate` msg/s for `seconds` through the `vitals` flow; latency to raw and alerts.

    Gold must exist in `settings`' database: until a nightly built it the flow only drains.
    """
    from carehouse.ingest.vitals.topic import ensure_topic

    ensure_topic(settings)
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / "vitals_flow.log"
    env = child_environment(settings) | FLOW_LOGGING
    flow = start_vitals_flow(settings, log)
    try:
        ready_seconds = wait_ready(flow, log, settings.vitals_topic)
        with connect(settings, "admin", autocommit=True) as conn:
            now = conn.execute("select now()").fetchone()
            assert now is not None
            poller = _Poller(settings.vitals_topic, since=now[0])
            stream = subprocess.Popen(
                [sys.executable, "-m", "carehouse.app.cli", "demo", "vitals", "--rate", str(rate),
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
            accounted = _until_accounted(conn, poller, sent, flow)
            stopped = _stop_flow(conn, poller, flow)
            poller.poll(conn)  # once more: the flow's last refresh is in
            dead = poller.dead_letters(conn)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.wait()
    if flow.returncode != 0:
        raise RuntimeError(f"vitals flow failed (exit {flow.returncode}):\n{log_tail(log)}")
    return {
        "rate_target": rate,
        # The stream paces itself over `seconds` from its own start (after its imports).
        "rate_achieved": sent / seconds,
        "stream_process_seconds": stream_seconds,
        "seconds": seconds,
        "flow_ready_seconds": ready_seconds,
        "sent": sent,
        "raw_rows": len(poller.raw),
        "dead_letters": dead,
        "all_accounted": accounted,
        # The flow exits 0 after SIGTERM only once gold holds everything it committed.
        "gold_refreshed_after_last": stopped,
        "raw": percentiles(poller.raw),
        "news2_alerts": percentiles(poller.alerts),
        "alerts": len(poller.alerts),
        "unmatched_alerts": poller.unmatched_alerts,
        "polls_without_alerts_view": poller.alerts_view_missing,
        **_flow_summary(log),
    }


def _until_accounted(
    conn: psycopg.Connection, poller: _Poller, sent: int, flow: subprocess.Popen[bytes]
) -> bool:
    """Poll until every sent message is in raw or the dead letters (False: gave up)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and flow.poll() is None:
        poller.poll(conn)
        if len(poller.raw) + poller.dead_letters(conn) >= sent:
            return True
        time.sleep(POLL_SECONDS)
    return False


def _stop_flow(conn: psycopg.Connection, poller: _Poller, flow: subprocess.Popen[bytes]) -> bool:
    """SIGTERM the flow and poll until it exits (its last refresh); True when it exited 0."""
    if flow.poll() is not None:
        return False  # it stopped on its own: the caller reports its exit code
    flow.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SETTLE_SECONDS
    while flow.poll() is None and time.monotonic() < deadline:
        poller.poll(conn)
        time.sleep(POLL_SECONDS)
    return flow.poll() == 0
