"""The `audit` schema: its tables, one record per pipeline run, one per publish."""
