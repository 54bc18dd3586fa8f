"""The environment that dbt, soda, psql and prefect need, derived from Settings.

`carehouse env` prints it as export lines; the orchestrator passes it to the
tools it runs. One place decides the variable names the dbt profile and the
Soda data source read.
"""

from __future__ import annotations

import os
import shlex

from carehouse.core.settings import PROJECT_ROOT, Settings

# Every run stays off the network: no tool may wait on an outside host.
TELEMETRY_OFF: dict[str, str] = {
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def database_environment(settings: Settings) -> dict[str, str]:
    """Variables the dbt profile, the Soda data source and psql read: Postgres only."""
    address = settings.pg_address
    env: dict[str, str] = {
        "CAREHOUSE_HOME": str(settings.home),
        "CAREHOUSE_PROJECT_DIR": str(PROJECT_ROOT),
        "CAREHOUSE_LANDING_DIR": str(settings.landing_dir),
        "CAREHOUSE_HOSPITAL_TIMEZONE": settings.hospital_timezone,
        "CAREHOUSE_VITALS_LOOKBACK_SECONDS": str(settings.vitals_lookback_seconds),
        "CAREHOUSE_DBT_THREADS": str(settings.dbt_threads),
        "CAREHOUSE_PATIENT_KEY_SALT": settings.patient_key_secret(),
        "CAREHOUSE_PG_HOST": address.host,
        "CAREHOUSE_PG_PORT": str(address.port),
        "CAREHOUSE_PG_DATABASE": address.database,
        "DBT_PROJECT_DIR": str(settings.dbt_project_dir),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        # psql as the transformer: it can read every layer but cannot write raw.
        "PGHOST": address.host,
        "PGPORT": str(address.port),
        "PGDATABASE": address.database,
        "PGUSER": settings.role_user("transformer"),
        "PGPASSWORD": settings.role_password("transformer"),
        **TELEMETRY_OFF,
    }
    for role in ("loader", "transformer", "bi"):
        env[f"CAREHOUSE_{role.upper()}_USER"] = settings.role_user(role)
        env[f"CAREHOUSE_{role.upper()}_PASSWORD"] = settings.role_password(role)
    return env


def tool_environment(settings: Settings) -> dict[str, str]:
    """Everything `carehouse env` exports: the database, the broker and Prefect."""
    env = database_environment(settings)
    env["CAREHOUSE_DATABASE_URL"] = settings.admin_dsn
    env["CAREHOUSE_KAFKA_BOOTSTRAP"] = settings.kafka
    env["PREFECT_API_URL"] = settings.prefect_api
    if settings.embedded_prefect:
        env["PREFECT_HOME"] = str(settings.prefect_home)
    embedded = [
        name
        for name, is_embedded in (
            ("postgres", settings.embedded_postgres),
            ("kafka", settings.embedded_kafka),
            ("prefect", settings.embedded_prefect),
        )
        if is_embedded
    ]
    env["CAREHOUSE_EMBEDDED"] = ",".join(embedded)
    return env


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of a child process whose `Settings()` must be exactly `settings`.

    This process's environment with the tool environment over it, the vitals topic, and a
    Prefect home of the settings' own (under `home`, which is created).
    """
    env = {
        **os.environ,
        **tool_environment(settings),
        "CAREHOUSE_VITALS_TOPIC": settings.vitals_topic,
        "PREFECT_HOME": str(settings.home / "prefect"),
    }
    settings.home.mkdir(parents=True, exist_ok=True)
    return env


def export_lines(env: dict[str, str]) -> str:
    """Shell `export` lines, safely quoted."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items()))


def apply_to_process(settings: Settings) -> dict[str, str]:
    """Export the tool environment into this process, before Prefect or dbt is imported.

    Prefect reads its settings from the environment when it is first imported,
    so entry points call this once, first.
    """
    env = tool_environment(settings)
    os.environ.update(env)
    return env
