"""Run one benchmark stage in a fresh interpreter and take its figures.

`start_stage` / `finish_stage` / `run_stage` (the parent) run
`python -m carehouse.bench.runner STAGE DATA_DIR OUT_JSON` (the child), whose settings come
from the environment (`carehouse.core.environment.child_environment`): `carehouse bench`
and `carehouse bench ingest` both measure their stages so. A fresh process per stage makes
peak memory that stage's alone and keeps one stage's warm caches from flattering the next.
Figures go to a file, not stdout: Prefect and dbt write to the console as they please. Peak
memory is this process's VmHWM and, apart, the largest child (dbt runs as one).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carehouse.bench import pipeline, stages
from carehouse.core.environment import child_environment
from carehouse.core.settings import Settings

# Every stage either command measures: name -> a function of the run's settings and the
# landing folder that returns the records it handled.
STAGES: dict[str, Callable[[Settings, Path], int]] = {
    "admissions_load": stages.admissions_load,
    "admissions_copy": stages.admissions_copy,
    "patients_load": stages.patients_load,
    "labs_load": stages.labs_load,
    "vitals_consume_only": stages.vitals_consume_only,
    "vitals_drain": stages.vitals_drain,
    "admissions_to_sql": pipeline.admissions_to_sql,
    "vitals_consume_copy": pipeline.vitals_consume_copy,
    "gate_raw": pipeline.gate_raw,
    "dbt_build_silver": pipeline.dbt_build_silver,
    "gate_silver": pipeline.gate_silver,
    "dbt_build_gold": pipeline.dbt_build_gold,
    "gold_sql_direct": pipeline.gold_sql_direct,
    "gate_gold": pipeline.gate_gold,
    "publish": pipeline.publish,
    "dbt_full_refresh": pipeline.dbt_full_refresh,
    "dbt_incremental": pipeline.dbt_incremental,
    "nightly_plain": pipeline.nightly_plain,
    "nightly_prefect": pipeline.nightly_prefect,
}

# ---- the parent: one stage in a fresh process ----------------------------------------------


def start_stage(settings: Settings, stage: str, data_dir: Path, out: Path) -> subprocess.Popen[str]:
    """Start one stage in a fresh interpreter; its figures go to `out`, its output beside."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (out.parent / f"{out.stem}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "carehouse.bench.runner", stage, str(data_dir), str(out)],
        env=child_environment(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish_stage(process: subprocess.Popen[str], stage: str, out: Path) -> dict[str, Any]:
    """Wait for a stage process; its figures, or a RuntimeError quoting its log."""
    code = process.wait()
    log = out.parent / f"{out.stem}.log"
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise RuntimeError(f"bench stage {stage} failed (exit {code}):\n{tail}")
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def run_stage(settings: Settings, stage: str, data_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Run one stage in a fresh process and return its figures (`out_dir/<stage>.json`)."""
    out = out_dir / f"{stage}.json"
    return finish_stage(start_stage(settings, stage, data_dir, out), stage, out)


# ---- the child: the stage itself -----------------------------------------------------------


def _peak_rss_kib() -> int:
    """This process's peak resident memory since exec.

    Not ru_maxrss: Linux carries it across execve, so a stage started by a big
    parent would report the parent's peak. VmHWM belongs to this address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _warm_imports(name: str) -> float:
    """Import what the stage would import lazily; a long-running worker pays this once."""
    started = time.perf_counter()
    # pyarrow loads its pandas shim on first use when pandas is installed (dev envs); dlt
    # imports its requests helper and psycopg2 on its first pipeline run.
    for module in (
        "pandas",
        "pyarrow.csv",
        "sqlalchemy",
        "dlt.sources.helpers.requests",
        "psycopg2",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if name.startswith(("gate", "dbt", "publish", "nightly")):
        import carehouse.quality.gates  # noqa: F401
        import flows.nightly  # noqa: F401 - Prefect and the tasks, as the worker has them
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    """Run the stage, write {stage, rows, seconds, peak_rss_mib, ...} to OUT_JSON."""
    name, data_dir, out = argv
    settings = Settings()
    import_seconds = _warm_imports(name)
    started = time.perf_counter()
    rows = STAGES[name](settings, Path(data_dir))
    seconds = time.perf_counter() - started
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = {
        "stage": name,
        "rows": rows,
        "seconds": seconds,
        "peak_rss_mib": _peak_rss_kib() / 1024,
        "peak_rss_children_mib": children_kib / 1024,
        "import_seconds": import_seconds,
    }
    Path(out).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
