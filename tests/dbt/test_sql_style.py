"""sqlfluff (dbt templater, postgres dialect) is clean on the dbt project.

It runs here rather than as a bare `make` step because the dbt templater opens
a database connection while it compiles: the session's Postgres provides it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from carehouse.core.environment import database_environment
from carehouse.core.settings import PROJECT_ROOT, Settings


def test_sqlfluff_lint_is_clean(settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **database_environment(settings),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "sqlfluff"), "lint", "dbt/models", "dbt/tests"]
        + [p for p in ("dbt/snapshots", "dbt/analyses") if (PROJECT_ROOT / p).exists()],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
