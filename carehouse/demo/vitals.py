"""The simulated bedside monitors' messages produced onto the vitals Kafka topic.

What the messages say is simulated in `carehouse.demo.monitors`; this module
only sends them. `produce_vitals` sends a deterministic history
(`generate_vitals`) as fast as the broker takes it; `stream_vitals` sends live
messages at a rate, stamped for measuring latency. Either returns only once the
broker has acknowledged every message, or raises.

Kafka timestamps are left to the producer (the time of producing): historical
timestamps would make a real broker's time-based retention delete the data at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import time
from datetime import date

from confluent_kafka import KafkaError, Message, Producer

from carehouse.core.settings import Settings
from carehouse.demo.monitors import DAY, Monitors, VitalMessage, default_patients, generate_vitals
from carehouse.ingest.vitals.settings import PRODUCED_AT_HEADER
from carehouse.ingest.vitals.topic import ensure_topic

log = logging.getLogger(__name__)


def _producer(settings: Settings, *, linger_ms: int) -> Producer:
    return Producer(
        {
            "bootstrap.servers": settings.kafka,
            "client.id": "carehouse-vitals-simulator",
            "acks": "all",
            # Retries never duplicate a message; the simulated duplicates are deliberate.
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "batch.size": 1_048_576,
            "queue.buffering.max.messages": 200_000,
        }
    )


class _Delivery:
    """Counts delivery reports; a message the broker did not take is never silently lost."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed: dict[str, int] = {}

    def __call__(self, err: KafkaError | None, message: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed[err.name()] = self.failed.get(err.name(), 0) + 1

    def check(self, produced: int) -> None:
        if self.failed or self.delivered != produced:
            raise RuntimeError(
                f"{produced - self.delivered:,} of {produced:,} vitals messages were not"
                f" delivered: {self.failed}"
            )


def _send(
    producer: Producer,
    topic: str,
    message: VitalMessage,
    delivery: _Delivery,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    while True:
        try:
            producer.produce(
                topic, message.value, key=message.key, headers=headers, on_delivery=delivery
            )
            return
        except BufferError:
            producer.poll(0.05)  # the local queue is full: let the broker catch up


def produce_vitals(
    settings: Settings,
    *,
    seed: int,
    end_date: date,
    days: int,
    scale: float,
    patients: list[str] | None = None,
) -> int:
    """Send the simulated messages (see `generate_vitals`) to the vitals topic; returns how many.

    Creates the topic when missing. Every message is acknowledged by the broker
    (acks=all, idempotent producer) before this returns, or it raises.

    Raises:
        RuntimeError: the broker did not take every message.
    """
    ensure_topic(settings)
    producer = _producer(settings, linger_ms=20)
    delivery = _Delivery()
    produced = 0
    for message in generate_vitals(
        seed=seed, end_date=end_date, days=days, scale=scale, patients=patients
    ):
        _send(producer, settings.vitals_topic, message, delivery)
        produced += 1
        if produced % 1_000 == 0:
            producer.poll(0)
    producer.flush()
    delivery.check(produced)
    return produced


def stream_vitals(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    seed: int,
    patients: list[str] | None = None,
) -> int:
    """Stream like bedside monitors: `rate` messages/s for `duration` s; returns how many.

    `observed_at` is the wall clock, and each message carries a `produced_at`
    header (epoch milliseconds) for measuring latency end to end. Patients'
    courses run fast (each message moves its stay on by one observation
    interval) so deterioration shows within a demo. The dirt is the historical
    generator's, except late messages (the stream is too short to hold them).

    Raises:
        ValueError: `rate` or `duration` is not positive.
        RuntimeError: the broker did not take every message.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    ensure_topic(settings)
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets: reproducible on purpose
    devices = max(1, min(2_000, math.ceil(rate)))
    monitors = Monitors(rng, patients or default_patients(devices * 2))
    # Simulated time per stay, so a short demo still walks through whole episodes.
    stays = [monitors.stay(0.0, length=3 * DAY) for _ in range(devices)]
    clock = [0.0] * devices
    producer = _producer(settings, linger_ms=5)
    delivery = _Delivery()
    topic = settings.vitals_topic
    held: list[tuple[float, int, VitalMessage]] = []  # out-of-order ones, by send time
    sequence = itertools.count()  # ties in `held` never compare messages
    produced = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        now = time.time()
        while held and held[0][0] <= now:
            _stamped(producer, topic, heapq.heappop(held)[2], delivery)
            produced += 1
        due = min(int(rate * elapsed) + 1, math.ceil(rate * duration)) - produced
        if due <= 0:
            producer.poll(0)
            time.sleep(min(0.005, 1 / rate))
            continue
        for _ in range(due):
            index = produced % devices
            stay = stays[index]
            clock[index] += stay.interval
            if clock[index] >= stay.end:
                monitors.release(stay)
                stays[index] = stay = monitors.stay(clock[index], length=3 * DAY)
            for message in monitors.message(stay, clock[index], now, clock=now):
                if message.kind == "late":
                    continue  # too late for a stream this short: the device gave up on it
                if message.kind == "out_of_order":
                    heapq.heappush(held, (now + rng.uniform(1, 5), next(sequence), message))
                    continue
                _stamped(producer, topic, message, delivery)
                produced += 1
        producer.poll(0)
    for _, _, message in sorted(held, key=lambda entry: entry[:2]):
        _stamped(producer, topic, message, delivery)
        produced += 1
    producer.flush()
    delivery.check(produced)
    return produced


def _stamped(producer: Producer, topic: str, message: VitalMessage, delivery: _Delivery) -> None:
    stamp = str(int(time.time() * 1000)).encode()
    _send(producer, topic, message, delivery, [(PRODUCED_AT_HEADER, stamp)])
