"""The embedded Prefect server and its process worker for the `carehouse` pool.

The server keeps its SQLite database under CAREHOUSE_HOME; analytics are off
so nothing waits on an outside host. The worker runs deployed flow runs as
subprocesses, inheriting the carehouse environment.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from carehouse.core.environment import TELEMETRY_OFF
from carehouse.core.settings import PROJECT_ROOT, Settings
from carehouse.services.process import (
    ServiceState,
    free_port,
    pid_alive,
    port_open,
    spawn,
    stop_group,
    wait_until,
)

SERVER = "prefect"
WORKER = "prefect-worker"
WORK_POOL = "carehouse"


def prefect_executable() -> str:
    """The prefect CLI of this environment."""
    return str(Path(sys.executable).parent / "prefect")


def api_healthy(api_url: str) -> bool:
    """True when a Prefect API answers its health check."""
    if not api_url.startswith(("http://", "https://")):
        return False
    try:
        url = f"{api_url.rstrip('/')}/health"
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - scheme checked above
            return bool(reply.status == 200)
    except OSError:
        return False


def server_env(settings: Settings, port: int) -> dict[str, str]:
    """Environment of the server process: its home, database and no analytics."""
    home = settings.prefect_home
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(home)),
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        **TELEMETRY_OFF,
    }


def running(settings: Settings, name: str = SERVER) -> ServiceState | None:
    """The recorded state when the process is alive (and, for the server, healthy)."""
    state = ServiceState.load(settings.state_dir, name)
    if state is None or not pid_alive(state.pid):
        return None
    if name == SERVER and not port_open(state.port):
        return None
    return state


def start_server(settings: Settings) -> ServiceState:
    """Start the Prefect server on a free loopback port; idempotent."""
    if (state := running(settings)) is not None:
        return state
    previous = ServiceState.load(settings.state_dir, SERVER)
    if previous and pid_alive(previous.pid):
        stop_group(previous.pid)
    port = free_port(ServiceState.last_port(settings.state_dir, SERVER))
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    log = settings.state_dir / "prefect.log"
    proc = spawn(
        [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        log=log,
        env=server_env(settings, port),
        cwd=settings.home,
    )
    state = ServiceState(name=SERVER, pid=proc.pid, port=port, log=str(log))
    state.save(settings.state_dir)
    return state


def wait_server(settings: Settings, state: ServiceState) -> None:
    """Block until the server answers (it takes 10-20 s to start)."""
    wait_until(
        lambda: api_healthy(f"http://127.0.0.1:{state.port}/api"),
        timeout=120,
        what="prefect server",
        log=Path(state.log),
        alive=lambda: pid_alive(state.pid),
    )


def ensure_concurrency_limit(settings: Settings, name: str) -> None:
    """Create the flows' global concurrency limit (one slot) when missing; idempotent.

    Flows create it on demand too (carehouse.warehouse.guards); creating it on `up` shows it
    in the UI before the first run. Plain HTTP: importing Prefect here would freeze its settings
    before `carehouse run` exports the API address.
    """
    api = settings.prefect_api.rstrip("/")
    if not api.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP Prefect API: {api}")
    try:
        with urllib.request.urlopen(f"{api}/v2/concurrency_limits/{name}", timeout=10):  # noqa: S310
            return
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{api}/v2/concurrency_limits/",
        data=json.dumps({"name": name, "limit": 1}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            return
    except urllib.error.HTTPError as err:
        if err.code != 409:  # created meanwhile by a flow
            raise


def start_worker(settings: Settings, env: Mapping[str, str]) -> ServiceState:
    """Start a process worker polling the `carehouse` pool; idempotent."""
    if (state := running(settings, WORKER)) is not None:
        return state
    log = settings.state_dir / "prefect-worker.log"
    proc = spawn(
        [prefect_executable(), "worker", "start", "--pool", WORK_POOL, "--type", "process"],
        log=log,
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
    )
    state = ServiceState(name=WORKER, pid=proc.pid, port=0, log=str(log))
    state.save(settings.state_dir)
    return state


def stop(settings: Settings, name: str) -> bool:
    """Stop the server or worker `up` started; True when one was running."""
    state = ServiceState.load(settings.state_dir, name)
    if state is None:
        return False
    was_alive = pid_alive(state.pid)
    if was_alive:
        stop_group(state.pid)
    ServiceState.forget(settings.state_dir, name)
    return was_alive
