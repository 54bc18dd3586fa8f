"""The `vitals` flow in a process of its own, as deployed, and the line that says it is ready.

`carehouse vitals` in the foreground, its output in a log file: what the vitals latency
benchmark streams through and what the flow tests run beside a nightly. The flow logs
`READY_LINE` once its drain runs (after Prefect's start-up and dbt's parse), so whoever
starts it can wait for that before sending traffic.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from carehouse.core.environment import child_environment
from carehouse.core.settings import Settings

# The flow's ready line, `%s` its topic: logged by `flows.vitals`, awaited by `wait_ready`.
READY_LINE = "vitals stream ready: draining %s"
READY_SECONDS = 600.0  # the flow's start-up (Prefect, dbt parse) on a loaded machine
POLL_SECONDS = 0.25  # how often wait_ready reads the log
# Root at INFO: `flows.vitals` logs its ready line at INFO, and Prefect's logging
# configuration (which the flow run applies) keeps the root logger at WARNING.
FLOW_LOGGING = {"PREFECT_LOGGING_ROOT_LEVEL": "INFO"}


def log_tail(path: Path) -> str:
    """The last 4,000 characters of a log, to quote in an error ("" if there is none)."""
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def start_vitals_flow(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`carehouse vitals` in its own process, as deployed, its output in `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "carehouse.app.cli", "vitals"],
            env=child_environment(settings) | FLOW_LOGGING,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_ready(flow: subprocess.Popen[bytes], log: Path, topic: str) -> float:
    """Wait for the flow's ready line for `topic`; the seconds it took to start."""
    started = time.monotonic()
    deadline = started + READY_SECONDS
    while time.monotonic() < deadline:
        if READY_LINE % topic in log.read_text(errors="replace"):
            return time.monotonic() - started
        if flow.poll() is not None:
            raise RuntimeError(
                f"vitals flow exited {flow.returncode} before ready:\n{log_tail(log)}"
            )
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"vitals flow not ready after {READY_SECONDS:.0f}s:\n{log_tail(log)}")
