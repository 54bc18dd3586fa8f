"""dbt runs, write-audit-publish of gold, the guards between flows, row counts per layer."""
