"""Prefect flows: thin sequences of tasks; the logic lives in carehouse/."""
