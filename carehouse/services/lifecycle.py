"""`carehouse up`, `down` and `status`: only what is not configured externally."""

from __future__ import annotations

from dataclasses import dataclass

from carehouse.core.bootstrap import bootstrap
from carehouse.core.database import DatabaseUnreachable, connect
from carehouse.core.environment import tool_environment
from carehouse.core.settings import ServiceNotRunning, Settings
from carehouse.services import kafka, postgres, prefect_server
from carehouse.services.kafka import answers_metadata
from carehouse.services.process import ServiceState, pid_alive
from carehouse.services.secrets_file import ensure_secrets
from carehouse.warehouse.guards import WAREHOUSE_LIMIT


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `carehouse status`."""

    name: str
    address: str
    up: bool
    embedded: bool


def up(settings: Settings) -> Settings:
    """Start every embedded service, bootstrap the database, start the worker.

    Returns the settings, which now resolve the started services' addresses.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    passwords = ensure_secrets(settings)
    # Prefect takes the longest to start: launch it first and wait for it last.
    prefect_state = prefect_server.start_server(settings) if settings.embedded_prefect else None
    if settings.embedded_postgres:
        postgres.start(settings, passwords["admin"])
    if settings.embedded_kafka:
        kafka.start(settings)
    if prefect_state is not None:
        prefect_server.wait_server(settings, prefect_state)
    bootstrap(settings)
    if settings.embedded_prefect:
        prefect_server.ensure_concurrency_limit(settings, WAREHOUSE_LIMIT)
        prefect_server.start_worker(settings, tool_environment(settings))
    return settings


def down(settings: Settings) -> list[str]:
    """Stop only what `up` started; returns the names of the services stopped."""
    stopped = []
    if prefect_server.stop(settings, prefect_server.WORKER):
        stopped.append(prefect_server.WORKER)
    if prefect_server.stop(settings, prefect_server.SERVER):
        stopped.append(prefect_server.SERVER)
    if kafka.stop(settings):
        stopped.append(kafka.NAME)
    if postgres.stop(settings):
        stopped.append(postgres.NAME)
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Each service, its address, and whether it answers."""
    rows = [_postgres_status(settings), _kafka_status(settings), _prefect_status(settings)]
    if settings.embedded_prefect:
        worker = ServiceState.load(settings.state_dir, prefect_server.WORKER)
        worker_up = worker is not None and pid_alive(worker.pid)
        rows.append(
            ServiceStatus("prefect-worker", f"pool {prefect_server.WORK_POOL}", worker_up, True)
        )
    return rows


def _postgres_status(settings: Settings) -> ServiceStatus:
    try:
        address = settings.pg_address
    except ServiceNotRunning:
        return ServiceStatus("postgres", "-", False, settings.embedded_postgres)
    label = f"{address.host}:{address.port}/{address.database}"
    try:
        with connect(settings, "admin"):
            pass
    except DatabaseUnreachable:
        return ServiceStatus("postgres", label, False, settings.embedded_postgres)
    return ServiceStatus("postgres", label, True, settings.embedded_postgres)


def _kafka_status(settings: Settings) -> ServiceStatus:
    try:
        bootstrap_servers = settings.kafka
    except ServiceNotRunning:
        return ServiceStatus("kafka", "-", False, settings.embedded_kafka)
    return ServiceStatus(
        "kafka", bootstrap_servers, answers_metadata(bootstrap_servers), settings.embedded_kafka
    )


def _prefect_status(settings: Settings) -> ServiceStatus:
    try:
        api = settings.prefect_api
    except ServiceNotRunning:
        return ServiceStatus("prefect", "-", False, settings.embedded_prefect)
    return ServiceStatus("prefect", api, prefect_server.api_healthy(api), settings.embedded_prefect)
