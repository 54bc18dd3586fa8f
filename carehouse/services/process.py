"""Detached service processes: start, record, probe and stop them by pid file.

Every embedded service runs in its own session (process group), so `down`
can stop it with everything it spawned and leave no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceState:
    """What `up` recorded about a running service."""

    name: str
    pid: int
    port: int
    log: str

    def save(self, state_dir: Path) -> None:
        """Write the state file atomically."""
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{self.name}.json.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(state_dir / f"{self.name}.json")

    @classmethod
    def load(cls, state_dir: Path, name: str) -> ServiceState | None:
        """Read a state file, or None when the service was never started."""
        path = state_dir / f"{name}.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    @staticmethod
    def forget(state_dir: Path, name: str) -> None:
        """Remove a state file, remembering the port so a restart can reuse it."""
        path = state_dir / f"{name}.json"
        if path.exists():
            port = json.loads(path.read_text())["port"]
            (state_dir / f"{name}.port").write_text(str(port))
        path.unlink(missing_ok=True)

    @staticmethod
    def last_port(state_dir: Path, name: str) -> int | None:
        """The port the service had last time, so exported addresses stay valid."""
        state = ServiceState.load(state_dir, name)
        if state is not None:
            return state.port
        remembered = state_dir / f"{name}.port"
        return int(remembered.read_text()) if remembered.exists() else None


class ServiceStartError(RuntimeError):
    """A service did not come up; the message points at its log."""


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1, the preferred one when it is free.

    A new port is drawn below the kernel's ephemeral range, where no outgoing connection is
    given a local port: a stopped service's port then stays free for its restart (which asks
    for it back, so that shells that exported the address keep working) however busy the
    machine is.
    """
    if preferred and _bindable(preferred):
        return preferred
    low, _ = _ephemeral_range()
    candidates = list(range(_LOWEST_SERVICE_PORT, low))
    random.SystemRandom().shuffle(candidates)
    for port in candidates[:_PORT_ATTEMPTS]:
        if _bindable(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        bound: int = sock.getsockname()[1]
        return bound


# Registered ports below this are left to the machine's own services.
_LOWEST_SERVICE_PORT = 20_000
_PORT_ATTEMPTS = 200
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (Linux; else IANA's)."""
    try:
        low, high = (int(value) for value in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 49_152, 65_535
    return low, high


def _bindable(port: int) -> bool:
    if port_open(port):
        return False
    try:
        with socket.socket() as probe:
            # As the servers bind: connections they closed (TIME_WAIT) do not hold the port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def spawn(
    args: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in its own session with output appended to its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            user=user,
        )


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Path,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Poll until ready() is true; fail with the log's tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise ServiceStartError(f"{what} exited during start-up; see {log}\n{tail(log)}")
        time.sleep(0.2)
    raise ServiceStartError(f"{what} not ready after {timeout:.0f}s; see {log}\n{tail(log)}")


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_group(pid: int, *, timeout: float = 15.0, first_signal: str = "SIGTERM") -> None:
    """Signal a process group, then SIGKILL whatever is left after the timeout."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.Signals[first_signal])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if os.getpgid(int(entry.name)) == pgid and pid_alive(int(entry.name)):
                return True
    return False
