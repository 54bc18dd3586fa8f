"""dbt in this process, parsed once, for a loop that runs the same selection again and again.

The vitals stream refreshes two gold models after every micro-batch. A dbt subprocess pays
Python's and dbt's start-up and a parse each time (seconds, more on a busy machine);
``dbtRunner`` with a manifest parsed once pays only the run. The trade-offs, and why it is
confined to this one long-running use: dbt keeps global state in the process (flags, adapter
registry, event logger), so invocations must not overlap (this class serialises them) and a
project changed on disk is not seen until the process restarts (a redeploy restarts the
flow). Every other dbt call (the nightly's builds) stays a subprocess (carehouse.warehouse.dbt).

The profile reads the connection from ``CAREHOUSE_*`` environment variables
(``dbt/profiles.yml``): they are set for the duration of each invocation and restored after,
so the process environment is left as it was.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from carehouse.core.settings import Settings
from carehouse.warehouse import parse_state
from carehouse.warehouse.dbt import (
    DbtError,
    DbtResult,
    NodeResult,
    dbt_environment,
    dbt_paths,
    failure_message,
)

_LOCK = threading.Lock()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _node_results(result: Any) -> tuple[NodeResult, ...]:
    """Per-node results of an invocation's RunExecutionResult (none for other results)."""
    nodes: list[NodeResult] = []
    for entry in getattr(result, "results", None) or ():
        rows = (entry.adapter_response or {}).get("rows_affected")
        nodes.append(
            NodeResult(
                unique_id=str(entry.node.unique_id),
                status=str(entry.status),
                execution_time_s=float(entry.execution_time or 0.0),
                rows_affected=int(rows) if isinstance(rows, int) else None,
                failures=int(entry.failures) if isinstance(entry.failures, int) else None,
                message=str(entry.message) if entry.message is not None else None,
            )
        )
    return tuple(nodes)


class DbtSession:
    """Parse the project once, then run dbt commands in-process against that manifest."""

    def __init__(self, settings: Settings, lane: str) -> None:
        from dbt.cli.main import dbtRunner

        self.settings = settings
        self.lane = lane
        self.target_path, self.log_path = dbt_paths(settings, lane)
        self.target_path.mkdir(parents=True, exist_ok=True)
        self.log_path.mkdir(parents=True, exist_ok=True)
        # Only what dbt and the profile read; the subprocess environment's PATH etc. stay.
        full = dbt_environment(settings, lane)
        self._env = {k: v for k, v in full.items() if k.startswith(("CAREHOUSE_", "DBT_"))}
        # From the state the nightlies keep (parse_state): a stream starts in a second or two
        # rather than after a whole parse.
        parse_state.seed(self.target_path, dbt_paths(settings)[0])
        parse_state.restore(self.target_path, parse_state.variant_key([]))
        with _LOCK, _environment(self._env):
            parsed = dbtRunner().invoke(["parse", *self._paths()])
        if not parsed.success or parsed.result is None:
            raise RuntimeError(f"dbt parse failed in-process: {parsed.exception!r}")
        self._runner = dbtRunner(manifest=parsed.result)  # type: ignore[arg-type]

    def _paths(self) -> list[str]:
        return [
            "--project-dir",
            str(self.settings.dbt_project_dir),
            "--profiles-dir",
            str(self.settings.dbt_project_dir),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
        ]

    def run(self, args: list[str]) -> DbtResult:
        """``dbt <args>`` in-process; raises DbtError naming the failed nodes, like run_dbt.

        No JSON artifacts: the node results come from the invocation itself, and writing
        manifest.json and run_results.json each time was about half of a stream refresh's
        own time (dbt serialises the whole manifest).
        """
        started = time.monotonic()
        with _LOCK, _environment(self._env):
            outcome: Any = self._runner.invoke([*args, "--no-write-json", *self._paths()])
        nodes = _node_results(outcome.result)
        result = DbtResult(
            args=tuple(args),
            return_code=0 if outcome.success else 1,
            elapsed_s=time.monotonic() - started,
            nodes=nodes,
            target_path=self.target_path,
            log_path=self.log_path,
        )
        if not result.success:
            detail = [] if outcome.exception is None else [repr(outcome.exception)]
            raise DbtError(failure_message(result, detail), result)
        return result
