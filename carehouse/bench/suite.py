"""`carehouse bench --scale S`: every stage of the nightly beside its baseline, in one run.

Data is generated once: a year of the hospital at `scale` compressed into 30
days (as `bench ingest` does), every feed from one simulated hospital so the
gates pass; admissions without file defects, so plain COPY reads the same files.
Databases on the same server, each with its own dbt target and reports:

- `stages`: each stage of the nightly in a fresh process, in the flow's order,
  with the baselines beside them (COPY, pandas `to_sql`, consume-only,
  consume + COPY, the gold models' compiled SQL run directly), then the large
  facts' full refresh against one new day incrementally (the year's ingestion
  instants spread over it first, as `bench incremental` does); afterwards the vitals
  latency (the `vitals` flow, see `latency`) runs against this loaded warehouse;
- `plain` and `prefect`: the whole nightly (drain, loads, gates, builds,
  publish) as plain calls and as the Prefect flow: Prefect's overhead;
- busy: a nightly on the `stages` warehouse itself (the next night: nothing new to load,
  silver and gold rebuilt) while the vitals latency is measured again there.

A quick run (`quick=True`, the smoke test's) runs one whole nightly instead of
three: the Prefect nightly itself is the busy phase's background batch, and
the plain nightly is not run. What that leaves unmeasured (the plain nightly,
Prefect's overhead, busy vs idle nightly) is recorded as `NOT_MEASURED`, never
as a figure.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from psycopg import sql

from carehouse.bench import context, latency, report, runner
from carehouse.bench.ingest import DAYS
from carehouse.bench.pipeline import LANE
from carehouse.bench.warehouse import spread_ingestion_over_the_year
from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.demo.reference import admissions_per_day
from carehouse.warehouse.dbt import dbt_paths

SEED = 7
RAW_SCHEMAS = ("raw_admissions", "raw_patients", "raw_labs", "raw_vitals")
DEFAULT_RATES = (100.0, 1_000.0, 10_000.0)
DEFAULT_LATENCY_SECONDS = 20.0
SLOWEST = 8  # dbt nodes listed per dbt stage
PATIENT_SNAPSHOTS = 2  # the latest two days: SCD2 still sees a day's changes
NOT_MEASURED = "not measured: quick run"
# The whole nightly without and with Prefect, twice each in mirrored order (plain, Prefect,
# Prefect, plain): a machine that speeds up or slows down during the run weighs on both
# alike, where one pair measured 3% once and -60% once.
NIGHTLY_ORDER = ("nightly_plain", "nightly_prefect", "nightly_prefect", "nightly_plain")

# Stages of the `stages` database, in order, with what their figures are a rate of:
# "files:<source>" (that folder's bytes, the records the stage returns), "topic" (the
# vitals topic's bytes), or "raw" (the whole raw layer: records and bytes it held).
STAGE_PLAN: tuple[tuple[str, str], ...] = (
    ("admissions_copy", "files:admissions"),
    ("admissions_to_sql", "files:admissions"),
    ("patients_load", "files:patients"),
    ("admissions_load", "files:admissions"),
    ("labs_load", "files:labs"),
    ("vitals_consume_only", "topic"),
    ("vitals_consume_copy", "topic"),
    ("vitals_drain", "topic"),
    ("gate_raw", "raw"),
    ("dbt_build_silver", "raw"),
    ("gate_silver", "raw"),
    ("dbt_build_gold", "raw"),
    ("gold_sql_direct", "raw"),
    ("gate_gold", "raw"),
    ("publish", "raw"),
    ("dbt_full_refresh", "raw"),
)
BASELINES = {
    "admissions_copy": "admissions_load",
    "admissions_to_sql": "admissions_load",
    "vitals_consume_only": "vitals_drain",
    "vitals_consume_copy": "vitals_drain",
    "gold_sql_direct": "dbt_build_gold",
    "nightly_plain": "nightly_prefect",
}


def _mean_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One stage's figures over repeated runs: mean seconds, largest peak, each run kept."""
    combined = dict(runs[-1])
    combined["seconds"] = sum(float(run["seconds"]) for run in runs) / len(runs)
    for peak in ("peak_rss_mib", "peak_rss_children_mib"):
        combined[peak] = max(float(run.get(peak, 0.0)) for run in runs)
    combined["runs"] = [
        {"seconds": run["seconds"], "loadavg_after": run["loadavg_after"]} for run in runs
    ]
    return combined


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Bench:
    """One `carehouse bench` run: its settings, folders and figures so far."""

    def __init__(self, settings: Settings, *, scale: float, out_dir: Path, data_dir: Path) -> None:
        self.settings = settings
        self.scale = scale
        self.out_dir = out_dir
        self.data_dir = data_dir
        self.stamp = out_dir.name
        self.topic = f"bench-{self.stamp}"
        self.end_date = date.today() - timedelta(days=1)
        self.yearly = scale * 365 / DAYS  # a year's labs and vitals over DAYS days
        self.results: dict[str, Any] = {"scale": scale, "stages": {}, "latency": {}}
        self.databases: list[str] = []

    def run_settings(self, name: str, topic: str | None = None) -> Settings:
        """Settings of one of this run's databases (created fresh on first use)."""
        database = f"{context.DATABASE_PREFIX}{name}"
        if database not in self.databases:
            context.fresh_database(self.settings, database)
            self.databases.append(database)
        return context.isolated(
            self.settings,
            database=database,
            home=self.out_dir / "work" / name,
            landing_dir=self.data_dir,
            topic=topic or self.topic,
        )

    # ---- data ------------------------------------------------------------------------

    def generate(self) -> None:
        """The landing files and the topic's messages, timed."""
        from carehouse.demo.admissions import generate_admissions
        from carehouse.demo.labs import generate_labs
        from carehouse.demo.patients import generate_patients
        from carehouse.demo.vitals import produce_vitals

        started = time.perf_counter()
        # One hospital at the compressed scale for every feed, so the admissions' patients
        # are the patient master's (the silver gate checks it).
        generate_admissions(
            self.data_dir, seed=SEED, end_date=self.end_date, days=DAYS,
            admissions_per_day=admissions_per_day(self.yearly), file_defects=False,
        )  # fmt: skip
        generate_patients(
            self.data_dir, seed=SEED, end_date=self.end_date, days=DAYS, scale=self.yearly
        )
        generate_labs(
            self.data_dir, seed=SEED, end_date=self.end_date, days=DAYS, scale=self.yearly
        )
        self.keep_latest_snapshots()
        topic_settings = self.settings.model_copy(update={"vitals_topic": self.topic})
        messages = produce_vitals(
            topic_settings, seed=SEED, end_date=self.end_date, days=DAYS, scale=self.yearly
        )
        self.results["data"] = {
            "generate_seconds": time.perf_counter() - started,
            "days": DAYS,
            "vitals_messages": messages,
            **{
                f"{source}_bytes": _folder_bytes(self.data_dir / source)
                for source in ("admissions", "patients", "labs")
            },
        }

    def keep_latest_snapshots(self) -> None:
        """Only the last PATIENT_SNAPSHOTS daily patient-master snapshots stay in landing.

        Each snapshot lists every registered patient, so the last one alone knows every
        patient of the admissions and labs; thirty full snapshots would make the patient
        master most of the batch (15M rows at scale 1) and not the 1M admissions.
        """
        snapshots = sorted((self.data_dir / "patients").glob("*.csv"))
        for path in snapshots[:-PATIENT_SNAPSHOTS]:
            path.unlink()

    # ---- stages ----------------------------------------------------------------------

    def stage(self, settings: Settings, name: str, unit: str) -> dict[str, Any]:
        """Run one stage in a fresh process; record records/s, MB/s and memory."""
        figures = runner.run_stage(settings, name, self.data_dir, self.out_dir / "stages")
        figures["loadavg_after"] = loadavg()
        figures["baseline_of"] = BASELINES.get(name)
        units = figures["rows"]
        if unit.startswith("files:"):
            figures["bytes"] = self.results["data"][f"{unit.removeprefix('files:')}_bytes"]
        elif unit == "topic":
            figures["bytes"] = self.results["data"].get("vitals_bytes", 0)
        else:
            records, size = self.raw_layer(settings)
            figures |= {"units": units, "rows": records, "bytes": size}
        if name.startswith("dbt_"):
            figures |= self.dbt_figures(settings, name)
        report.derive(figures)
        self.results["stages"][name] = figures
        return figures

    def dbt_figures(self, settings: Settings, name: str) -> dict[str, Any]:
        """A dbt stage's run_results.json (a copy kept): its slowest nodes and node time.

        Node time is the time dbt reports for the nodes, summed over its threads: the
        warehouse's work, without the process's start-up and parse (seconds whatever the
        rows, most of an incremental day at small scales), as `bench incremental` measures.
        """
        target, _ = dbt_paths(settings, LANE)
        kept = self.out_dir / "stages" / f"{name}.run_results.json"
        shutil.copy(target / "run_results.json", kept)
        results = json.loads(kept.read_text())["results"]
        seconds = [(r["unique_id"], float(r.get("execution_time") or 0.0)) for r in results]
        slowest = sorted(seconds, key=lambda node: -node[1])[:SLOWEST]
        return {
            "slowest_nodes": [[unique_id, round(time, 2)] for unique_id, time in slowest],
            "node_seconds": round(sum(time for _, time in seconds), 3),
        }

    def raw_layer(self, settings: Settings) -> tuple[int, int]:
        """Records and bytes held in raw: the input of every transform and gate."""
        cached = self.results.get("raw_layer")
        if cached is not None:
            return int(cached[0]), int(cached[1])
        records = size = 0
        with connect(settings, "admin") as conn:
            tables = conn.execute(
                "select n.nspname, c.relname, pg_total_relation_size(c.oid)"
                " from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
                " where c.relkind in ('r', 'p') and n.nspname = any(%s)"
                " and c.relname not like '\\_%%'",
                (list(RAW_SCHEMAS),),
            ).fetchall()
            for schema, table, table_bytes in tables:
                count = conn.execute(
                    sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
                ).fetchone()
                records += int(count[0]) if count else 0
                size += int(table_bytes)
        self.results["raw_layer"] = [records, size]
        return records, size

    def vitals_bytes(self, settings: Settings) -> None:
        """The topic's message bytes, from the consume + COPY baseline's copy of it."""
        with connect(settings, "admin") as conn:
            row = conn.execute(
                "select coalesce(sum(octet_length(message_value)), 0) from bench.vitals_copy"
            ).fetchone()
        self.results["data"]["vitals_bytes"] = int(row[0]) if row else 0

    def run_stages(self) -> Settings:
        """The nightly's stages and the baselines, one fresh process each."""
        stages = self.run_settings("stages")
        for name, unit in STAGE_PLAN:
            if name == "dbt_full_refresh":
                # Untimed: the labs' and vitals' ingestion instants as day-by-day arrival
                # would have made them, as `bench incremental` does. Loaded minutes ago, all
                # of raw lies within the incremental lookback, and the one new day's run
                # would re-read the whole year.
                spread_ingestion_over_the_year(stages)
            if name == "vitals_drain":
                self.vitals_bytes(stages)
                for earlier in ("vitals_consume_only", "vitals_consume_copy"):
                    self.results["stages"][earlier]["bytes"] = self.results["data"]["vitals_bytes"]
                    report.derive(self.results["stages"][earlier])
            self.stage(stages, name, unit)
            if name == "vitals_drain":
                self.raw_layer(stages)  # every source is in raw now
        new_day = self.feed_new_day(stages)
        figures = self.stage(stages, "dbt_incremental", "raw")
        figures["rows"] = new_day
        report.derive(figures)
        self.restore_fact_views(stages)
        return stages

    def restore_fact_views(self, settings: Settings) -> None:
        """Re-create the views on the facts that the full refresh dropped (untimed).

        The facts' `--full-refresh` replaced gold.fct_vitals in place, and Postgres dropped
        the views over it (gold.news2_alerts among them) with the old table. A nightly never
        does that (it rebuilds in gold_next and publishes); the latency runs next need the
        warehouse as a nightly leaves it, alerts view included.
        """
        from carehouse.warehouse.dbt import run_dbt

        facts = ("fct_vitals", "fct_lab_results")
        run_dbt(
            settings,
            ["run", "--select", *(f"{fact}+" for fact in facts), "--exclude", *facts],
            lane=LANE,
        )

    def feed_new_day(self, settings: Settings) -> int:
        """One more day of labs and vitals after the data, loaded (untimed)."""
        from carehouse.demo.labs import generate_labs
        from carehouse.demo.vitals import produce_vitals
        from carehouse.ingest.labs import load_labs
        from carehouse.ingest.vitals.drain import drain_vitals

        day = self.end_date + timedelta(days=1)
        folder = self.out_dir / "work" / "new-day"
        generate_labs(folder, seed=SEED + 1, end_date=day, days=1, scale=self.yearly,
                      file_defects=False)  # fmt: skip
        labs = load_labs(settings, folder / "labs").received
        day_settings = settings.model_copy(update={"vitals_topic": f"{self.topic}-day"})
        produce_vitals(day_settings, seed=SEED + 1, end_date=day, days=1, scale=self.yearly)
        return labs + drain_vitals(day_settings, until_caught_up=True).received

    # ---- the whole nightly, and latency ----------------------------------------------

    def run_nightlies(self, *, quick: bool = False) -> None:
        """The nightly as plain calls, then through Prefect, each on a fresh database.

        A quick run runs neither here: its Prefect nightly is the busy latency's batch.
        """
        if quick:
            self.results["stages"]["nightly_plain"] = {
                "stage": "nightly_plain",
                "measured": False,
                "note": NOT_MEASURED,
                "baseline_of": BASELINES["nightly_plain"],
            }
            return
        runs: dict[str, list[dict[str, Any]]] = {"nightly_plain": [], "nightly_prefect": []}
        for turn, name in enumerate(NIGHTLY_ORDER):
            database = f"{name.removeprefix('nightly_')}{turn}"
            runs[name].append(self.stage(self.run_settings(database), name, "files:admissions"))
            # Each nightly loads the whole batch into a database of its own: drop it now.
            context.drop_database(self.settings, f"{context.DATABASE_PREFIX}{database}")
            self.databases.remove(f"{context.DATABASE_PREFIX}{database}")
        for name, figures in runs.items():
            self.results["stages"][name] = _mean_of_runs(figures)
            self.nightly_bytes(name)

    def nightly_bytes(self, name: str) -> None:
        """A nightly's MB/s are of the whole batch it reads."""
        self.results["stages"][name]["bytes"] = self.batch_bytes()
        report.derive(self.results["stages"][name])

    def batch_bytes(self) -> int:
        """Bytes a nightly reads: every landing file and the topic."""
        data = self.results["data"]
        return int(sum(data[f"{s}_bytes"] for s in ("admissions", "patients", "labs", "vitals")))

    def run_latency(
        self, stages: Settings, rates: tuple[float, ...], seconds: float, *, quick: bool = False
    ) -> None:
        """Latency per rate, idle (loaded warehouse), then while a nightly batch runs.

        The busy batch is the Prefect nightly on the stream's own warehouse, as deployed: the
        next night, with nothing new to load but the stream's messages, so it rebuilds silver
        and gold beside the stream, and the stream and the nightly share its locks (the
        stream's staging table, the publish). In a quick run it is the `nightly_prefect`
        stage itself, on its own database (its figures then say it ran beside the latency).
        """
        self.results["latency"]["idle"] = self._latency_series(stages, "idle", rates, seconds)
        name = "nightly_prefect" if quick else "nightly_background"
        busy = self.run_settings("prefect") if quick else stages
        out = self.out_dir / "stages" / f"{name}.json"
        background = runner.start_stage(busy, "nightly_prefect", self.data_dir, out)
        try:
            series = self._latency_series(
                stages, "busy", rates, seconds, running=lambda: background.poll() is None
            )
        finally:
            figures = runner.finish_stage(background, name, out)
        figures |= {"stage": name, "loadavg_after": loadavg(), "bytes": self.batch_bytes()}
        report.derive(figures)
        self.results["latency"]["busy"] = series
        if quick:
            figures |= {"baseline_of": None, "note": "ran beside the busy vitals latency"}
            self.results["stages"]["nightly_prefect"] = figures
            self.results["latency"]["busy_nightly"] = {"same_as": "nightly_prefect", **figures}
        else:
            self.results["latency"]["busy_nightly"] = figures

    def _latency_series(
        self,
        stages: Settings,
        mode: str,
        rates: tuple[float, ...],
        seconds: float,
        running: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        series: dict[str, Any] = {}
        for rate in rates:
            label = f"{rate:g}"
            settings = stages.model_copy(update={"vitals_topic": f"{self.topic}-{mode}-{label}"})
            work = self.out_dir / "work" / f"latency-{mode}-{label}"
            figures = latency.measure_latency(settings, rate=rate, seconds=seconds, work_dir=work)
            figures["loadavg_after"] = loadavg()
            if running is not None:
                figures["nightly_running_at_end"] = running()
            series[label] = figures
        return series

    # ---- the machine -----------------------------------------------------------------

    def describe_machine(self) -> None:
        """Cores, memory, load and the versions that matter."""
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        with connect(self.settings, "admin") as conn:
            row = conn.execute("show server_version").fetchone()
        versions = {
            "postgres": str(row[0]) if row else "unknown",
            "python": platform.python_version(),
        }
        for package in ("dbt-core", "dbt-postgres", "dlt", "prefect", "soda-core", "psycopg",
                        "confluent-kafka", "pandas", "sqlalchemy"):  # fmt: skip
            versions[package] = version(package)
        self.results["machine"] = {
            "cores": os.cpu_count(),
            "memory_gib": round(memory_kib / 1024 / 1024, 1),
            "platform": platform.platform(),
            "loadavg_start": loadavg(),
        }
        self.results["versions"] = versions

    def cleanup(self) -> None:
        """Drop this run's databases."""
        for database in self.databases:
            context.drop_database(self.settings, database)


def run_bench(
    settings: Settings,
    *,
    scale: float,
    out_dir: Path,
    rates: tuple[float, ...] = DEFAULT_RATES,
    latency_seconds: float = DEFAULT_LATENCY_SECONDS,
    keep_databases: bool = False,
    quick: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole benchmark; writes results.json, results.md and bench.png into `out_dir`.

    `quick`: one whole nightly instead of three (see the module doc); the figures it
    skips are recorded as `NOT_MEASURED`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        bench = Bench(settings, scale=scale, out_dir=out_dir, data_dir=Path(tmp))
        bench.describe_machine()
        bench.results["quick"] = quick
        started = time.perf_counter()
        try:
            log(f"bench: generating scale {scale:g} data")
            bench.generate()
            log("bench: stages and baselines")
            stages = bench.run_stages()
            if not quick:
                log("bench: the whole nightly, plain and through Prefect")
            bench.run_nightlies(quick=quick)
            log("bench: vitals latency, idle and during a nightly")
            bench.run_latency(stages, rates, latency_seconds, quick=quick)
        finally:
            if not keep_databases:
                bench.cleanup()
        results = bench.results
    results["seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_end"] = loadavg()
    results["at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report.finish(results, out_dir)
    return results
