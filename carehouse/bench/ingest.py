"""`carehouse bench ingest`: loader throughput and memory against baselines, in one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from psycopg import sql

from carehouse.core.bootstrap import bootstrap
from carehouse.core.database import connect
from carehouse.core.environment import tool_environment
from carehouse.core.settings import Settings
from carehouse.demo.admissions import generate_admissions
from carehouse.demo.labs import generate_labs
from carehouse.demo.patients import generate_patients
from carehouse.demo.vitals import produce_vitals

BENCH_DATABASE = "carehouse_bench"
ADMISSIONS_PER_YEAR = 1_000_000  # scale 1.0
DAYS = 30
STAGE_ORDER = (
    "admissions_copy",
    "admissions_load",
    "patients_load",
    "labs_load",
    "vitals_consume_only",
    "vitals_drain",
)
TARGETS = {  # stage: (minimum records/s, or a ratio to the baseline as a string)
    "admissions_load": ("admissions_copy", 0.5),
    "labs_load": (None, 50_000.0),
    "vitals_drain": (None, 100_000.0),
}


@dataclass(frozen=True)
class StageFigures:
    """One stage's measurement."""

    stage: str
    rows: int
    seconds: float
    peak_rss_mib: float
    import_seconds: float

    @property
    def rows_per_second(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds else 0.0


def fresh_database(settings: Settings) -> Settings:
    """A new, bootstrapped benchmark database on the same server."""
    name = sql.Identifier(BENCH_DATABASE)
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    bench = settings.for_database(BENCH_DATABASE)
    bootstrap(bench)
    return bench


def run_stage(settings: Settings, stage: str, data_dir: Path) -> StageFigures:
    """Run one stage in a fresh process, as the real CLI would."""
    result = subprocess.run(
        [sys.executable, "-m", "carehouse.bench.stage", stage, BENCH_DATABASE, str(data_dir)],
        env={
            **os.environ,
            **tool_environment(settings),
            "CAREHOUSE_VITALS_TOPIC": settings.vitals_topic,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench stage {stage} failed:\n{result.stderr[-4000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return StageFigures(**figures)


def bench_ingest(settings: Settings, *, scale: float, out_dir: Path) -> list[StageFigures]:
    """Generate scale-sized data, then measure each loader beside its baseline."""
    bench = fresh_database(settings)
    # A topic of its own: the bench never drains (or feeds) the warehouse's stream.
    bench = bench.model_copy(update={"vitals_topic": f"bench-vitals-{int(time.time())}"})
    per_day = max(1, round(ADMISSIONS_PER_YEAR * scale / DAYS))
    end_date = date.today() - timedelta(days=1)
    results: list[StageFigures] = []
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        data_dir = Path(tmp)
        generate_admissions(
            data_dir,
            seed=7,
            end_date=end_date,
            days=DAYS,
            admissions_per_day=per_day,
            file_defects=False,
        )
        # A year's volume over DAYS days: the same rows per stage as a year at this scale.
        yearly = scale * 365 / DAYS
        generate_patients(data_dir, seed=7, end_date=end_date, days=DAYS, scale=scale)
        generate_labs(data_dir, seed=7, end_date=end_date, days=DAYS, scale=yearly)
        produce_vitals(bench, seed=7, end_date=end_date, days=DAYS, scale=yearly)
        for stage in STAGE_ORDER:
            results.append(run_stage(bench, stage, data_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ingest.json").write_text(
        json.dumps(
            {"scale": scale, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "stages": [asdict(r) | {"rows_per_second": r.rows_per_second} for r in results]},
            indent=2,
        )
    )  # fmt: skip
    return results


def render(results: list[StageFigures]) -> str:
    """A Markdown table of the figures, with ratios to their baselines."""
    by_stage = {r.stage: r for r in results}
    lines = [
        "| stage | records | seconds | records/s | peak RSS MiB | target | met |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        target, met = "", ""
        if r.stage in TARGETS:
            baseline, minimum = TARGETS[r.stage]
            base = by_stage.get(baseline) if baseline else None
            if base is not None:
                ratio = r.rows_per_second / base.rows_per_second
                target = f">= {minimum}x {baseline} (is {ratio:.2f}x)"
                met = "yes" if ratio >= minimum else f"no: {ratio / minimum:.0%} of target"
            else:
                target = f">= {minimum:,.0f}/s"
                met = (
                    "yes"
                    if r.rows_per_second >= minimum
                    else (f"no: {r.rows_per_second / minimum:.0%} of target")
                )
        lines.append(
            f"| {r.stage} | {r.rows:,} | {r.seconds:.2f} | {r.rows_per_second:,.0f} "
            f"| {r.peak_rss_mib:.0f} | {target} | {met} |"
        )
    return "\n".join(lines)
