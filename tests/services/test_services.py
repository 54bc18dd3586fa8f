"""`carehouse up` / `down` / `status` on real embedded services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from carehouse.core.settings import Role, Settings
from carehouse.services import kafka, postgres, prefect_server
from carehouse.services.lifecycle import down, status, up
from carehouse.services.process import ServiceState, pid_alive

CLI = [sys.executable, "-m", "carehouse.app.cli"]


def _group_members(pid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pid and pid_alive(int(entry.name)):
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return members


@pytest.mark.slow
@pytest.mark.services  # starts its own set, without the session's `settings`
def test_up_twice_is_harmless_and_down_leaves_no_process(tmp_path: Path) -> None:
    own = Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    first = up(own)
    names = (postgres.NAME, kafka.NAME, prefect_server.SERVER, prefect_server.WORKER)
    states = {name: ServiceState.load(own.state_dir, name) for name in names}
    try:
        assert all(state is not None for state in states.values())
        assert all(row.up for row in status(first)), status(first)

        second = up(own)
        again = {name: ServiceState.load(own.state_dir, name) for name in names}
        assert again == states, "a second `up` must reuse the running services"
        assert second.admin_dsn == first.admin_dsn
        with psycopg.connect(second.dsn("transformer")) as conn:
            assert conn.execute("select current_user").fetchone() == ("carehouse_transformer",)
    finally:
        stopped = down(own)

    assert set(stopped) == set(names)
    for state in states.values():
        assert state is not None
        assert not pid_alive(state.pid)
        assert _group_members(state.pid) == [], f"{state.name} left processes behind"
    assert not any(row.up for row in status(own))
    assert down(own) == [], "a second `down` has nothing to stop"


def test_up_restarts_a_killed_service_on_the_same_port(settings: Settings) -> None:
    before = ServiceState.load(settings.state_dir, kafka.NAME)
    assert before is not None
    kafka.stop(settings)
    ready = up(settings)
    after = ServiceState.load(settings.state_dir, kafka.NAME)
    assert after is not None and after.pid != before.pid
    assert after.port == before.port, "users' shells keep working after a restart"
    assert kafka.answers_metadata(ready.kafka)


def test_unreachable_external_database_is_one_clear_line(settings: Settings) -> None:
    env = {
        **os.environ,
        # Port 1 on loopback: nothing listens there.
        "CAREHOUSE_DATABASE_URL": "postgresql://someone:secret@127.0.0.1:1/hospital",
        "CAREHOUSE_KAFKA_BOOTSTRAP": settings.kafka,
        "PREFECT_API_URL": settings.prefect_api,
        "CAREHOUSE_LOADER_PASSWORD": "x",
        "CAREHOUSE_TRANSFORMER_PASSWORD": "x",
        "CAREHOUSE_BI_PASSWORD": "x",
    }
    result = subprocess.run(
        [*CLI, "up"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CAREHOUSE_DATABASE_URL" in lines[0]
    assert "127.0.0.1:1" in lines[0]
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_env_exports_what_the_tools_need(settings: Settings) -> None:
    result = subprocess.run(
        ["bash", "-c", f'eval "$({" ".join(CLI)} env)" && psql -Atc "select current_user"'],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "carehouse_transformer"
    exported = subprocess.run(
        [*CLI, "env"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for name in (
        "CAREHOUSE_DATABASE_URL",
        "CAREHOUSE_KAFKA_BOOTSTRAP",
        "PREFECT_API_URL",
        "SODA_CORE_TELEMETRY_ENABLED",
        "DBT_PROFILES_DIR",
    ):
        assert f"export {name}=" in exported


@pytest.mark.parametrize("role", ["admin", "loader", "transformer", "bi"])
def test_dsn_connects_as_the_role(settings: Settings, role: Role) -> None:
    dsn = subprocess.run(
        [*CLI, "dsn", "--role", role], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select current_user").fetchone() == (settings.role_user(role),)


def test_secrets_file_is_private(settings: Settings) -> None:
    assert settings.secrets_file.stat().st_mode & 0o777 == 0o600
