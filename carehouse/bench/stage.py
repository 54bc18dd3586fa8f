"""Run one benchmark stage in a fresh interpreter and print its figures as JSON.

A fresh process per stage makes peak memory (ru_maxrss) that stage's alone
and keeps one stage's warm caches from flattering the next.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from carehouse.bench import stages
from carehouse.core.settings import Settings

STAGES: dict[str, Callable[[Settings, Path], int]] = {
    "admissions_load": stages.admissions_load,
    "admissions_copy": stages.admissions_copy,
    "patients_load": stages.patients_load,
    "labs_load": stages.labs_load,
    "vitals_consume_only": stages.vitals_consume_only,
    "vitals_drain": stages.vitals_drain,
}


def _peak_rss_kib() -> int:
    """This process's peak resident memory since exec.

    Not ru_maxrss: Linux carries it across execve, so a stage started by a big
    parent would report the parent's peak. VmHWM belongs to this address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _warm_imports() -> float:
    """Import what the loaders import lazily; a long-running worker pays this once."""
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
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    """`python -m carehouse.bench.stage NAME DATABASE DATA_DIR`: prints one JSON object."""
    name, database, data_dir = argv
    settings = Settings().for_database(database)
    import_seconds = _warm_imports()
    started = time.perf_counter()
    rows = STAGES[name](settings, Path(data_dir))
    seconds = time.perf_counter() - started
    peak_kib = _peak_rss_kib()
    figures = {
        "stage": name,
        "rows": rows,
        "seconds": seconds,
        "peak_rss_mib": peak_kib / 1024,
        "import_seconds": import_seconds,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
