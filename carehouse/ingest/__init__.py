"""Getting source data into raw: landed files through dlt, with a ledger and a quarantine."""
