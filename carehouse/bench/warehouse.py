"""`carehouse bench incremental`: one new day through the incremental facts vs a full refresh.

A year of labs and vitals is loaded, then its ingestion times are spread over the year (the
loaders stamp `now()`, so a year loaded in minutes would look like one batch and the
incremental lookback would cover all of it; in production each day arrives on its day).
The facts and everything they read are built with `--full-refresh` (timed), one more day is
loaded and drained, and the same selection runs incrementally (timed). A last full refresh
over the same raw rows proves the incremental result equal to it, table by table.

Two costs are reported for each run: the wall time of the dbt invocation, which includes
dbt's fixed start-up (interpreter, project parse, connection, relation cache), and the time
dbt reports for the nodes themselves (run_results.json `execution_time`), the warehouse's work.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from psycopg import sql

from carehouse.bench import context
from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.demo.labs import generate_labs
from carehouse.demo.vitals import produce_vitals
from carehouse.ingest.labs import load_labs
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.warehouse.dbt import DbtResult, run_dbt

FACTS = ("fct_vitals", "fct_lab_results")
YEAR = 365
SELECTION = ["--select", *(f"+{fact}" for fact in FACTS)]

# Each raw row's ingestion instant as if the year had arrived day by day: a vitals message a
# minute after it was taken, a lab file at 06:00 on its date (the date in its name; the
# newest file, yesterday's, then lies in the past at any hour of today, and not within the
# lookback of a day loaded now). The order of the lab versions of one observation is kept:
# later files, later instants.
_SPREAD_INGESTION = (
    sql.SQL("update raw_vitals.vitals set _ingested_at = observed_at + interval '1 minute'"),
    sql.SQL(
        "update raw_labs.observations set _ingested_at ="
        " cast(substring(_source_file from '(\\d{4}-\\d{2}-\\d{2})') as date)"
        " + interval '6 hours'"
    ),
)
_RAW_TABLES = (("raw_vitals", "vitals"), ("raw_labs", "observations"))


@dataclass(frozen=True)
class RunFigures:
    """One dbt invocation: its wall time and the time dbt reports for its nodes."""

    wall_seconds: float
    node_seconds: float

    @classmethod
    def of(cls, result: DbtResult, wall_seconds: float) -> RunFigures:
        """Figures of a finished run (node times summed from run_results.json)."""
        return cls(wall_seconds, sum(node.execution_time_s for node in result.nodes))

    @property
    def overhead_seconds(self) -> float:
        """The cost of dbt itself outside the nodes: start-up, parse, connection, relation cache."""
        return self.wall_seconds - self.node_seconds


@dataclass(frozen=True)
class IncrementalFigures:
    """Full refresh of the large facts against an incremental run over one new day."""

    rows_before: int
    rows_new_day: int
    full_refresh: RunFigures
    incremental: RunFigures
    incremental_equals_full_refresh: bool

    @property
    def ratio(self) -> float:
        """The warehouse's work for one day as a share of a full refresh (target <= 0.15)."""
        return self.incremental.node_seconds / self.full_refresh.node_seconds

    @property
    def wall_ratio(self) -> float:
        """The same with dbt's start-up included on both sides."""
        return self.incremental.wall_seconds / self.full_refresh.wall_seconds


def _feed(settings: Settings, folder: Path, *, end_date: date, days: int, scale: float) -> int:
    generate_labs(folder, seed=11, end_date=end_date, days=days, scale=scale, file_defects=False)
    labs = load_labs(settings, folder / "labs").loaded
    produce_vitals(settings, seed=11, end_date=end_date, days=days, scale=scale)
    return labs + drain_vitals(settings, until_caught_up=True).loaded


def spread_ingestion_over_the_year(settings: Settings) -> None:
    """Give the year's raw rows the ingestion instants of day-by-day arrival (as admin).

    The tables are rewritten afterwards so the update leaves no dead rows behind to slow the
    full refresh down.
    """
    with connect(settings, "admin", autocommit=True) as conn:
        for statement in _SPREAD_INGESTION:
            conn.execute(statement)
        for schema, table in _RAW_TABLES:
            conn.execute(sql.SQL("vacuum full analyze {}").format(sql.Identifier(schema, table)))


def fact_checksums(settings: Settings) -> dict[str, str]:
    """Row count and an order-independent md5 of every row of each fact."""
    checksums: dict[str, str] = {}
    with connect(settings, "transformer") as conn:
        conn.execute("set timezone to 'UTC'")
        for fact in FACTS:
            row = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(md5(fact::text), '' order by"
                    " md5(fact::text)), '')) from {} as fact"
                ).format(sql.Identifier("gold", fact))
            ).fetchone()
            assert row is not None
            checksums[fact] = f"{row[0]}:{row[1]}"
    return checksums


def timed_run(settings: Settings, args: list[str]) -> RunFigures:
    """Run dbt and measure it."""
    started = time.perf_counter()
    result = run_dbt(settings, args)
    return RunFigures.of(result, time.perf_counter() - started)


def bench_incremental(settings: Settings, *, scale: float, out_dir: Path) -> IncrementalFigures:
    """A year of labs and vitals at `scale`, a full refresh, then one more day incrementally."""
    bench = context.fresh_database(settings, context.BENCH_DATABASE)
    bench = bench.model_copy(update={"vitals_topic": f"bench-incremental-{int(time.time())}"})
    last_day = date.today() - timedelta(days=2)
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        rows_before = _feed(bench, Path(tmp) / "year", end_date=last_day, days=YEAR, scale=scale)
        spread_ingestion_over_the_year(bench)
        run_dbt(bench, ["seed"])
        run_dbt(bench, ["run", *SELECTION, "--full-refresh"])  # warm: creates the tables
        full = timed_run(bench, ["run", *SELECTION, "--full-refresh"])
        rows_new = _feed(
            bench, Path(tmp) / "day", end_date=last_day + timedelta(days=1), days=1, scale=scale
        )
        incremental = timed_run(bench, ["run", *SELECTION])
        after_incremental = fact_checksums(bench)
        run_dbt(bench, ["run", *SELECTION, "--full-refresh"])
        equal = fact_checksums(bench) == after_incremental
    figures = IncrementalFigures(rows_before, rows_new, full, incremental, equal)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "incremental.json").write_text(
        json.dumps(
            asdict(figures)
            | {"ratio": figures.ratio, "wall_ratio": figures.wall_ratio, "scale": scale},
            indent=2,
        )
    )
    return figures
