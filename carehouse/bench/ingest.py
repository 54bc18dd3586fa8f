"""`carehouse bench ingest`: loader throughput and memory against baselines, in one run."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from carehouse.bench import context, runner
from carehouse.core.settings import Settings
from carehouse.demo.admissions import generate_admissions
from carehouse.demo.labs import generate_labs
from carehouse.demo.patients import generate_patients
from carehouse.demo.vitals import produce_vitals

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

    @classmethod
    def of(cls, figures: dict[str, Any]) -> StageFigures:
        """The figures `bench ingest` reports, of those the stage runner took."""
        return cls(**{field.name: figures[field.name] for field in fields(cls)})

    @property
    def rows_per_second(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds else 0.0


def bench_ingest(settings: Settings, *, scale: float, out_dir: Path) -> list[StageFigures]:
    """Generate scale-sized data, then measure each loader beside its baseline."""
    context.fresh_database(settings, context.BENCH_DATABASE)
    per_day = max(1, round(ADMISSIONS_PER_YEAR * scale / DAYS))
    end_date = date.today() - timedelta(days=1)
    results: list[StageFigures] = []
    with tempfile.TemporaryDirectory(prefix="carehouse-bench-") as tmp:
        data_dir = Path(tmp) / "landing"
        work = Path(tmp) / "work"  # the stages' home (dlt state) and figures, not kept
        # A topic of its own: the bench never drains (or feeds) the warehouse's stream.
        bench = context.isolated(
            settings,
            database=context.BENCH_DATABASE,
            home=work,
            landing_dir=data_dir,
            topic=f"bench-vitals-{int(time.time())}",
        )
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
            figures = runner.run_stage(bench, stage, data_dir, work / "stages")
            results.append(StageFigures.of(figures))
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
