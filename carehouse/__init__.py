"""carehouse: a Postgres-native ELT warehouse for hospital data."""
