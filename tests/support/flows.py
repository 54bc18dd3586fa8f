"""Helpers of the flow tests: the business date of the shared warehouse, queries, folders."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from carehouse.core.settings import Settings

BUSINESS_DATE = date(2026, 3, 20)


def rows(
    settings: Settings, query: str | sql.Composable, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """All rows of a query, as the transformer."""
    with psycopg.connect(settings.dsn("transformer")) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def landing(settings: Settings, source: str) -> Path:
    """A source's landing folder."""
    folder = settings.landing_dir / source
    folder.mkdir(parents=True, exist_ok=True)
    return folder
