"""The loaders' stages and their baselines, `carehouse bench ingest`'s (and `bench`'s).

Each returns the number of records it handled; `carehouse.bench.runner.STAGES` registers
them beside the nightly's (`carehouse.bench.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from psycopg import sql

from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.ingest.admissions import load_admissions
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients

ADMISSION_COLUMNS = (
    "admission_id", "patient_id", "admitted_at", "discharged_at", "department",
    "admission_type", "discharge_disposition", "primary_diagnosis_code", "total_charges",
    "insurer_id",
)  # fmt: skip
COPY_CHUNK = 1 << 20
CONSUME_BATCH = 20_000  # messages per consume() of the Kafka baselines


def admissions_load(settings: Settings, data_dir: Path) -> int:
    """Carehouse's admissions loader (dlt, ledger, quarantine) over the generated files."""
    summary = load_admissions(settings, data_dir / "admissions")
    return summary.received


def admissions_copy(settings: Settings, data_dir: Path) -> int:
    """Baseline: a plain psycopg COPY of the same files into an equivalent all-text table.

    The table is created and committed first, so the COPY appends to an existing table as
    every load after the first does. Creating it in the COPY's own transaction would let a
    server at ``wal_level=minimal`` (the embedded one) skip the WAL for the rows: a saving
    no appending loader gets, and none at all on a server with replicas or backups.
    """
    table = sql.Identifier("bench", "admissions_copy")
    columns = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(c)) for c in ADMISSION_COLUMNS
    )
    rows = 0
    with connect(settings, "admin") as conn:
        conn.execute("create schema if not exists bench")
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(sql.SQL("create table {} ({})").format(table, columns))
        conn.commit()
        copy = sql.SQL("copy {} from stdin with (format csv, header true)").format(table)
        with conn.cursor() as cursor:
            for path in sorted((data_dir / "admissions").glob("*.csv")):
                with cursor.copy(copy) as stream, path.open("rb") as handle:
                    while chunk := handle.read(COPY_CHUNK):
                        stream.write(chunk)
                rows += cursor.rowcount
        conn.commit()
    return rows


def patients_load(settings: Settings, data_dir: Path) -> int:
    """Carehouse's patient-master loader over the generated daily snapshots."""
    return load_patients(settings, data_dir / "patients").received


def labs_load(settings: Settings, data_dir: Path) -> int:
    """Carehouse's FHIR Observation loader over the generated NDJSON files."""
    return load_labs(settings, data_dir / "labs").received


def vitals_drain(settings: Settings, data_dir: Path) -> int:
    """Carehouse's exactly-once drain of the topic into raw, until caught up."""
    from carehouse.ingest.vitals.drain import drain_vitals

    return drain_vitals(settings, until_caught_up=True).received


def baseline_consumer(settings: Settings, group: str) -> Any:
    """A confluent-kafka consumer assigned every partition of the topic from offset 0.

    Plain assignment (no group join, which takes seconds), no commits, an EOF event per
    partition: what the baselines need to read the topic once, to its end.
    """
    from confluent_kafka import Consumer, TopicPartition

    from carehouse.ingest.vitals.settings import PARTITIONS

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
        }
    )
    consumer.assign([TopicPartition(settings.vitals_topic, p, 0) for p in range(PARTITIONS)])
    return consumer


def batches_to_end(consumer: Any) -> Iterator[list[Any]]:
    """A baseline consumer's messages, one consumed batch at a time, until every partition's end.

    The end-of-partition events are not messages; any other error raises.
    """
    from confluent_kafka import KafkaError

    from carehouse.ingest.vitals.settings import PARTITIONS

    done: set[int] = set()
    while len(done) < PARTITIONS:
        batch = []
        for message in consumer.consume(num_messages=CONSUME_BATCH, timeout=1.0):
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                done.add(int(message.partition() or 0))
            else:
                raise RuntimeError(f"consume failed: {error}")
        yield batch


def vitals_consume_only(settings: Settings, data_dir: Path) -> int:
    """Baseline: confluent-kafka consuming every partition to its end, writing nothing."""
    consumer = baseline_consumer(settings, "carehouse-bench-consume-only")
    try:
        return sum(len(batch) for batch in batches_to_end(consumer))
    finally:
        consumer.close()
