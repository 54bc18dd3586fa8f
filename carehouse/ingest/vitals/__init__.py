"""Vital signs from Kafka into raw, exactly once: the drain (not a dlt source; see drain.py)."""
