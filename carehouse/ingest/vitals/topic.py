"""The vitals topic: created when missing, with the partitions the drain expects."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin package does not re-export it by name

from carehouse.core.settings import Settings
from carehouse.ingest.vitals.errors import DrainError
from carehouse.ingest.vitals.settings import PARTITIONS, REPLICATION_FACTOR

TOPIC_TIMEOUT_SECONDS = 15.0


def ensure_topic(settings: Settings, partitions: int = PARTITIONS) -> int:
    """Create the vitals topic when missing; returns its number of partitions.

    Only the full topic list is requested: a metadata request naming a missing
    topic makes some brokers (Tansu among them) create it with their default
    partition count.
    """
    topic = settings.vitals_topic
    admin = AdminClient({"bootstrap.servers": settings.kafka})
    try:
        existing = admin.list_topics(timeout=TOPIC_TIMEOUT_SECONDS).topics
    except KafkaException as err:
        where = "embedded Tansu" if settings.embedded_kafka else "CAREHOUSE_KAFKA_BOOTSTRAP"
        raise DrainError(
            f"cannot reach Kafka ({where}) at {settings.kafka}: {err.args[0].name()}"
        ) from err
    if topic not in existing:
        future = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=REPLICATION_FACTOR)]
        )[topic]
        try:
            future.result(timeout=TOPIC_TIMEOUT_SECONDS)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise  # another process creating it at the same time is fine; the rest is not
    deadline = time.monotonic() + TOPIC_TIMEOUT_SECONDS
    while True:
        metadata = admin.list_topics(timeout=TOPIC_TIMEOUT_SECONDS).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return len(metadata.partitions)
        if time.monotonic() > deadline:
            raise DrainError(f"topic {topic} was created but its partitions never appeared")
        time.sleep(0.1)
