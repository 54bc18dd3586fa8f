"""Source data into raw: landed files through dlt (ledger, quarantine) and the vitals drain."""
