"""Run one `carehouse bench` stage in a fresh interpreter and write its figures as JSON.

`python -m carehouse.bench.measure STAGE DATA_DIR OUT_JSON`; the settings come
from the environment (see `carehouse.bench.context.run_environment`). Figures
go to a file, not stdout: Prefect and dbt write to the console as they please.
Peak memory is this process's VmHWM and, apart, the largest child (dbt runs as
one).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from carehouse.bench import pipeline, stage
from carehouse.core.settings import Settings

STAGES: dict[str, Callable[[Settings, Path], int]] = {**stage.STAGES, **pipeline.STAGES}


def _warm_imports(name: str) -> float:
    """Import what the stage would import lazily; a long-running worker pays this once."""
    started = time.perf_counter()
    stage._warm_imports()
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
        "peak_rss_mib": stage._peak_rss_kib() / 1024,
        "peak_rss_children_mib": children_kib / 1024,
        "import_seconds": import_seconds,
    }
    Path(out).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
