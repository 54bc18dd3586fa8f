"""Staging sees only committed loads: rows of an interrupted load never reach silver or gold."""

from __future__ import annotations

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import run_dbt
from tests.support.warehouse import ADMISSIONS, isolated_warehouse, load_raw_admissions

pytestmark = pytest.mark.slow


def test_rows_of_a_pending_load_are_invisible_to_staging(settings: Settings) -> None:
    with isolated_warehouse(settings, "pending") as warehouse:
        load_raw_admissions(warehouse, ADMISSIONS[:3])
        with psycopg.connect(warehouse.dsn("loader")) as conn:
            conn.execute(
                "update raw_admissions._carehouse_files set status = 'pending'"
                " where load_id = (select max(load_id) from raw_admissions._carehouse_files)"
            )
            pending = conn.execute(
                "select count(*) from raw_admissions.admissions where _source_file_id in"
                " (select file_id from raw_admissions._carehouse_files where status = 'pending')"
            ).fetchone()
        assert pending is not None and pending[0] > 0

        run_dbt(
            warehouse, ["build", "--select", "+stg_admissions__admissions", "+admissions_rejected"]
        )

        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            visible = conn.execute(
                "select count(*) from staging.stg_admissions__admissions"
                " where load_id = (select max(load_id) from raw_admissions._carehouse_files)"
            ).fetchone()
            rejected = conn.execute(
                "select count(*) from quarantine.admissions_rejected"
                " where load_id = (select max(load_id) from raw_admissions._carehouse_files)"
            ).fetchone()
        assert visible == (0,) and rejected == (0,)
