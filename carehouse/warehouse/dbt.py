"""Run dbt against the warehouse and fail loudly, naming the nodes that failed.

dbt runs in a process of its own for every command (carehouse.warehouse.dbt_process): its
global state (flags, adapter registry, logging) stays out of the caller's process, so a
long-lived worker can run it again and again. Its target and log
directories live under ``CAREHOUSE_HOME`` so a run never writes into the repository.

Concurrent dbt processes must not share a target directory (each rewrites
``manifest.json``, ``run_results.json`` and its partial-parse state): a flow gives its
invocations their own *lane* (``dbt_paths(settings, lane)``), e.g. its flow run id, under
``CAREHOUSE_HOME/dbt/runs/<lane>/``. A new lane starts from the shared target's partial-parse
state, so it does not pay a full parse.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carehouse.core.environment import database_environment
from carehouse.core.settings import Settings
from carehouse.warehouse import parse_state
from carehouse.warehouse.dbt_process import DbtProcess

logger = logging.getLogger(__name__)

# run_results.json statuses that mean a node did not do its job (warn and skipped do not
# count: a warning is a pass by the project's choice; a skip follows another node's failure).
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})

# A lane names a directory: keep it to a safe file name.
_LANE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Lines of dbt output kept for an error message when dbt fails before writing results.
_OUTPUT_TAIL_LINES = 40


@dataclass(frozen=True)
class NodeResult:
    """The outcome of one dbt node (model, seed, snapshot, test, unit test)."""

    unique_id: str
    status: str
    execution_time_s: float
    rows_affected: int | None
    failures: int | None
    message: str | None

    @property
    def failed(self) -> bool:
        """True when the node errored or its test failed."""
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class DbtResult:
    """What one dbt invocation did."""

    args: tuple[str, ...]
    return_code: int
    elapsed_s: float
    nodes: tuple[NodeResult, ...]
    target_path: Path
    log_path: Path

    @property
    def success(self) -> bool:
        """True when dbt exited 0 and no node failed."""
        return self.return_code == 0 and not self.failed_nodes

    @property
    def failed_nodes(self) -> tuple[NodeResult, ...]:
        """Nodes that errored or failed."""
        return tuple(node for node in self.nodes if node.failed)


class DbtError(RuntimeError):
    """dbt failed; the message names the failed nodes or quotes dbt's last output."""

    def __init__(self, message: str, result: DbtResult) -> None:
        super().__init__(message)
        self.result = result


def dbt_paths(settings: Settings, lane: str | None = None) -> tuple[Path, Path]:
    """The target and log directories dbt writes to, under the carehouse home.

    Without a lane: the shared ones (one dbt at a time: the CLI, tests, benchmarks). With a
    lane: directories of that lane alone, for a flow that may run beside another.
    """
    base = settings.home / "dbt"
    if lane is not None:
        if not _LANE.fullmatch(lane):
            raise ValueError(f"unsafe dbt lane name {lane!r}")
        base = base / "runs" / lane
    return base / "target", base / "logs"


def remove_lane(settings: Settings, lane: str) -> None:
    """Delete a lane's directories (after a successful flow run: a failed one keeps them).

    Its partial-parse states first become the seed of the next lanes (see parse_state).
    """
    target_path, _ = dbt_paths(settings, lane)
    if not target_path.parent.exists():
        return
    parse_state.keep(target_path, dbt_paths(settings)[0])
    shutil.rmtree(target_path.parent)


def dbt_environment(settings: Settings, lane: str | None = None) -> dict[str, str]:
    """The full environment of a dbt subprocess: the tool environment plus dbt's paths."""
    target_path, log_path = dbt_paths(settings, lane)
    return {
        # The caller's environment still matters (PATH, locale, PGSSL* for an external
        # server); the settings-derived connection variables override any stray ones.
        **os.environ,
        **database_environment(settings),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(log_path),
        "DBT_USE_COLORS": "false",
        # A lane's dbt.log is kept to read what a failed run did: node starts, ends and errors
        # (info). Debug adds every SQL statement and event, about a twentieth of dbt's CPU;
        # the SQL of each node is in the target's compiled/ and run/ folders anyway.
        "DBT_LOG_LEVEL_FILE": "info",
        "DBT_VERSION_CHECK": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_dbt(settings: Settings, args: list[str], *, lane: str | None = None) -> DbtResult:
    """Run ``dbt <args>`` in the project; raise DbtError naming failed nodes if dbt fails.

    Args:
        settings: The carehouse settings; connection and paths derive from them.
        args: dbt arguments, e.g. ``["build", "--select", "+avg_los_by_department"]``.
        lane: Run in this lane's own target and log directories (see the module docstring).

    Returns:
        Per-node results of the run (empty for commands that write no run_results.json).

    Raises:
        DbtError: dbt exited non-zero, or a node errored or failed.
    """
    target_path, log_path = dbt_paths(settings, lane)
    target_path.mkdir(parents=True, exist_ok=True)
    log_path.mkdir(parents=True, exist_ok=True)
    if lane is not None:
        parse_state.seed(target_path, dbt_paths(settings)[0])
    variant = parse_state.variant_key(args)
    parse_state.restore(target_path, variant)
    run_results = target_path / "run_results.json"
    # A crash before dbt writes new results must not be read as the previous run's results.
    run_results.unlink(missing_ok=True)

    logger.info("running dbt %s", " ".join(args))
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
    with DbtProcess(
        args, dbt_environment(settings, lane), str(settings.dbt_project_dir)
    ) as process:
        # Stream rather than buffer: a long build shows progress in the orchestrator's log.
        for text in process.lines():
            tail.append(text)
            logger.info("dbt: %s", text)
        return_code = process.wait()
    elapsed = time.monotonic() - started
    parse_state.save(target_path, variant)

    nodes = read_run_results(run_results) if run_results.exists() else ()
    result = DbtResult(
        args=tuple(args),
        return_code=return_code,
        elapsed_s=elapsed,
        nodes=nodes,
        target_path=target_path,
        log_path=log_path,
    )
    if not result.success:
        raise DbtError(failure_message(result, list(tail)), result)
    return result


def read_run_results(path: Path) -> tuple[NodeResult, ...]:
    """The per-node results in a dbt ``run_results.json``."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    nodes: list[NodeResult] = []
    for entry in data.get("results", []):
        adapter_response: dict[str, Any] = entry.get("adapter_response") or {}
        rows = adapter_response.get("rows_affected")
        failures = entry.get("failures")
        nodes.append(
            NodeResult(
                unique_id=str(entry["unique_id"]),
                status=str(entry["status"]),
                execution_time_s=float(entry.get("execution_time") or 0.0),
                rows_affected=int(rows) if isinstance(rows, int) else None,
                failures=int(failures) if isinstance(failures, int) else None,
                message=str(entry["message"]) if entry.get("message") is not None else None,
            )
        )
    return tuple(nodes)


def failure_message(result: DbtResult, output_tail: list[str]) -> str:
    """Name the failed nodes, or quote dbt's last output when none ran."""
    command = " ".join(result.args)
    failed = result.failed_nodes
    if failed:
        lines = [f"dbt {command} failed: {len(failed)} node(s) failed"]
        for node in failed:
            detail = f" ({node.failures} failing rows)" if node.status == "fail" else ""
            message = f": {node.message}" if node.message else ""
            lines.append(f"  - {node.unique_id} [{node.status}]{detail}{message}")
        skipped = sum(1 for node in result.nodes if node.status == "skipped")
        if skipped:
            lines.append(f"  ({skipped} downstream node(s) skipped)")
        return "\n".join(lines)
    # No node failed but dbt did: a parse, compile or connection error before any node ran.
    output = "\n".join(output_tail)
    return f"dbt {command} exited with code {result.return_code}:\n{output}"
