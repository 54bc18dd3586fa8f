"""Embedded services: Postgres, a Kafka-protocol broker, a Prefect server and worker."""
