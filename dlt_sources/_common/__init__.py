"""The file and format toolkit the dlt sources share; it imports nothing from carehouse."""
