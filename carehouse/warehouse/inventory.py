"""Row counts per layer, for run summaries and the audit."""

from __future__ import annotations

from psycopg import sql

from carehouse.core.database import connect
from carehouse.core.settings import Settings

LAYER_SCHEMAS = (
    "raw_admissions",
    "raw_patients",
    "raw_labs",
    "raw_vitals",
    "staging",
    "snapshots",
    "silver",
    "gold",
    "quarantine",
)


def table_counts(settings: Settings, schemas: tuple[str, ...] = LAYER_SCHEMAS) -> dict[str, int]:
    """Exact row counts of every base table and view in the given schemas, by schema.table."""
    counts: dict[str, int] = {}
    with connect(settings, "transformer") as conn:
        tables = conn.execute(
            """
            select table_schema, table_name
            from information_schema.tables
            where table_schema = any(%s) and table_name not like '\\_dlt%%'
              and table_name not like '\\_carehouse%%'
            order by table_schema, table_name
            """,
            (list(schemas),),
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            row = conn.execute(query).fetchone()
            counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def rows_by_layer(counts: dict[str, int]) -> dict[str, int]:
    """Sum table counts per layer (raw_* schemas count as one layer, raw)."""
    layers: dict[str, int] = {}
    for name, rows in counts.items():
        schema = name.split(".", 1)[0]
        layer = "raw" if schema.startswith("raw_") else schema
        layers[layer] = layers.get(layer, 0) + rows
    return layers
