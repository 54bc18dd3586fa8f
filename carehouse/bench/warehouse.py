"""`carehouse bench incremental`: one new day through the incremental facts vs a full refresh."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from carehouse.bench.ingest import fresh_database
from carehouse.demo.labs import generate_labs
from carehouse.demo.vitals import produce_vitals
from carehouse.ingest.labs import load_labs
from carehouse.ingest.vitals import drain_vitals
from carehouse.settings import Settings
from carehouse.transform import run_dbt

FACTS = ("fct_vitals", "fct_lab_results")
YEAR = 365


@dataclass(frozen=True)
class IncrementalFigures:
    """Full refresh of the large facts against an incremental run over one new day."""

    rows_before: int
    rows_new_day: int
    full_refresh_seconds: float
    incremental_seconds: float

    @property
    def ratio(self) -> float:
        """Incremental cost as a share of the full refresh (target <= 0.15)."""
        return self.incremental_seconds / self.full_refresh_seconds


def _feed(settings: Settings, folder: Path, *, end_date: date, days: int, scale: float) -> int:
    generate_labs(folder, seed=11, end_date=end_date, days=days, scale=scale, file_defects=False)
    labs = load_labs(settings, folder / "labs").loaded
    produce_vitals(settings, seed=11, end_date=end_date, days=days, scale=scale)
    return labs + drain_vitals(settings, until_caught_up=True).loaded


def bench_incremental(settings: Settings, *, scale: float, out_dir: Path) -> IncrementalFigures:
    """A year of labs and vitals at `scale`, a full refresh, then one more day incrementally."""
    bench = fresh_database(settings)
    bench = bench.model_copy(update={"vitals_topic": f"bench-incremental-{int(time.time())}"})
    last_day = date.today() - timedelta(days=2)
    selection = ["--select", *(f"+{fact}" for fact in FACTS)]
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        rows_before = _feed(bench, Path(tmp) / "year", end_date=last_day, days=YEAR, scale=scale)
        run_dbt(bench, ["seed"])
        run_dbt(bench, ["run", *selection, "--full-refresh"])  # warm: creates the tables
        started = time.perf_counter()
        run_dbt(bench, ["run", *selection, "--full-refresh"])
        full = time.perf_counter() - started
        rows_new = _feed(
            bench, Path(tmp) / "day", end_date=last_day + timedelta(days=1), days=1, scale=scale
        )
        started = time.perf_counter()
        run_dbt(bench, ["run", *selection])
        incremental = time.perf_counter() - started
    figures = IncrementalFigures(rows_before, rows_new, full, incremental)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "incremental.json").write_text(
        json.dumps(asdict(figures) | {"ratio": figures.ratio, "scale": scale}, indent=2)
    )
    return figures
