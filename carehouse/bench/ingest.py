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

from carehouse.bootstrap import bootstrap
from carehouse.database import connect
from carehouse.demo.admissions import generate_admissions
from carehouse.environment import tool_environment
from carehouse.settings import Settings

BENCH_DATABASE = "carehouse_bench"
ADMISSIONS_PER_YEAR = 1_000_000  # scale 1.0
DAYS = 30


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
        env={**os.environ, **tool_environment(settings)},
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
    fresh_database(settings)
    per_day = max(1, round(ADMISSIONS_PER_YEAR * scale / DAYS))
    results: list[StageFigures] = []
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        data_dir = Path(tmp)
        generate_admissions(
            data_dir,
            seed=7,
            end_date=date.today() - timedelta(days=1),
            days=DAYS,
            admissions_per_day=per_day,
            file_defects=False,
        )
        for stage in ("admissions_copy", "admissions_load"):
            results.append(run_stage(settings, stage, data_dir))
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
        "| stage | records | seconds | records/s | peak RSS MiB | vs baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    baselines = {"admissions_load": "admissions_copy"}
    for r in results:
        base = by_stage.get(baselines.get(r.stage, ""))
        ratio = f"{r.rows_per_second / base.rows_per_second:.2f}x COPY" if base else ""
        lines.append(
            f"| {r.stage} | {r.rows:,} | {r.seconds:.2f} | {r.rows_per_second:,.0f} "
            f"| {r.peak_rss_mib:.0f} | {ratio} |"
        )
    return "\n".join(lines)
