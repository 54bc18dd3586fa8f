"""Vital signs: JSON messages from bedside monitors on the Kafka topic `patient-vitals`.

Messages land in `raw_vitals.vitals` as received (Kafka coordinates as the key,
the whole message as `payload`, its fields typed), poison messages in
`quarantine.vitals_dead_letters` with the raw bytes and a reason.

There is no dlt resource here on purpose. Exactly once needs the partitions'
next offsets committed in the same Postgres transaction as the rows they
cover, and dlt commits its load packages on its own (and its verified Kafka
source keys rows on a hash of topic, partition and key, without the offset,
so every message of one device would collide). The drain in
`carehouse.ingest.vitals` therefore writes with psycopg COPY itself; this
package holds its constants (`settings.py`) and its parsing and validation
(`helpers.py`), importable without loading dlt.
"""
