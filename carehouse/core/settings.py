"""The one settings object: read once from the environment, passed down.

Unset service URLs mean "use the embedded service", whose address and
generated credentials are then read from the state files under
``CAREHOUSE_HOME`` (written by ``carehouse up``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

Role = Literal["admin", "loader", "transformer", "bi"]
ROLES: tuple[Role, ...] = ("admin", "loader", "transformer", "bi")

# Application roles created by the sql/ bootstrap; admin is whoever the DSN names.
ROLE_NAMES: dict[Role, str] = {
    "loader": "carehouse_loader",
    "transformer": "carehouse_transformer",
    "bi": "carehouse_bi",
}

EMBEDDED_DATABASE = "carehouse"
EMBEDDED_ADMIN_USER = "carehouse_admin"


@dataclass(frozen=True)
class PgAddress:
    """Where a Postgres server is, without credentials."""

    host: str
    port: int
    database: str


class Settings(BaseSettings):
    """carehouse configuration; every field can be set as ``CAREHOUSE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CAREHOUSE_", extra="ignore")

    home: Path = Field(default=PROJECT_ROOT / ".carehouse")
    landing_dir: Path = Field(default=PROJECT_ROOT / "data" / "landing")
    database_url: SecretStr | None = None
    kafka_bootstrap: str | None = None
    prefect_api_url: str | None = Field(default=None, validation_alias="PREFECT_API_URL")
    # Passwords of the application roles. Unset: generated once by `carehouse up`
    # and kept in the 0600 secrets file under `home`.
    loader_password: SecretStr | None = None
    transformer_password: SecretStr | None = None
    bi_password: SecretStr | None = None
    # Salt of the pseudonymous patient key in gold. Unset: generated once, kept with the
    # passwords. Changing it re-keys every patient.
    patient_key_salt: SecretStr | None = None
    # Set by `carehouse env`: the URLs it exported for these services came from the
    # embedded ones, so a later `carehouse up` in that shell still manages them.
    embedded: str = ""
    hospital_timezone: str = "UTC"
    dbt_project_dir: Path = Field(default=PROJECT_ROOT / "dbt")
    soda_dir: Path = Field(default=PROJECT_ROOT / "soda")
    sql_dir: Path = Field(default=PROJECT_ROOT / "sql")
    vitals_topic: str = "patient-vitals"
    # Freshness SLA of each gold table (YAML: default_hours, tables: {name: hours}).
    freshness_file: Path = Field(default=PROJECT_ROOT / "freshness.yml")
    # The vitals flow runs dbt in its own process, parsed once (carehouse.warehouse.dbt_session);
    # false: a dbt subprocess per refresh.
    vitals_dbt_in_process: bool = True
    # How far the vitals stream's incremental models look back past the newest ingestion
    # instant they hold (dbt var vitals_lookback_seconds): a drain transaction that started
    # earlier but committed later is not missed. The drain enforces the other half: it rolls
    # back (and re-drains) any batch whose transaction is still open after half of this.
    vitals_lookback_seconds: int = Field(default=60, ge=10)
    # dbt's threads. Each compiles and sends one node at a time; on small data that is Python
    # work, and more threads than cores only trade the GIL (a tenth more CPU for a build on
    # two cores, no faster). Real data is Postgres's work, where four overlap well.
    dbt_threads: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1)
    connect_timeout_s: int = 5

    # ---- state written by `carehouse up` -------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """Pid files, ports and logs of the embedded services."""
        return self.home / "run"

    @property
    def secrets_file(self) -> Path:
        """Generated passwords (mode 0600)."""
        return self.home / "secrets.json"

    @property
    def reports_dir(self) -> Path:
        """Gate reports, one folder per run."""
        return self.home / "reports"

    def _secrets(self) -> dict[str, str]:
        if not self.secrets_file.exists():
            return {}
        data: dict[str, str] = json.loads(self.secrets_file.read_text())
        return data

    def _service_state(self, name: str) -> dict[str, object] | None:
        path = self.state_dir / f"{name}.json"
        if not path.exists():
            return None
        data: dict[str, object] = json.loads(path.read_text())
        return data

    # ---- which services are embedded ----------------------------------------------------

    def _is_embedded(self, service: str, configured: object) -> bool:
        return configured is None or service in self.embedded.split(",")

    @property
    def embedded_postgres(self) -> bool:
        """True when no external database is configured."""
        return self._is_embedded("postgres", self.database_url)

    @property
    def embedded_kafka(self) -> bool:
        """True when no external Kafka is configured."""
        return self._is_embedded("kafka", self.kafka_bootstrap)

    @property
    def embedded_prefect(self) -> bool:
        """True when no external Prefect API is configured."""
        return self._is_embedded("prefect", self.prefect_api_url)

    # ---- resolved addresses -------------------------------------------------------------

    @property
    def admin_dsn(self) -> str:
        """The admin connection string: external URL, or the embedded server's."""
        if self.database_url is not None and not self.embedded_postgres:
            return self.database_url.get_secret_value()
        state = self._service_state("postgres")
        if state is None:
            raise ServiceNotRunning("postgres", "run `carehouse up` first")
        password = self._secrets().get("admin")
        if password is None:
            raise ServiceNotRunning("postgres", f"no admin password in {self.secrets_file}")
        return _dsn(
            EMBEDDED_ADMIN_USER,
            password,
            PgAddress("127.0.0.1", int(str(state["port"])), EMBEDDED_DATABASE),
        )

    @property
    def pg_address(self) -> PgAddress:
        """Host, port and database of the warehouse."""
        parts = urlsplit(self.admin_dsn)
        return PgAddress(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database=unquote(parts.path.lstrip("/")) or "postgres",
        )

    def role_password(self, role: Role) -> str:
        """Password of an application role: environment first, then the secrets file."""
        if role == "admin":
            password = urlsplit(self.admin_dsn).password
            return unquote(password) if password else ""
        configured: SecretStr | None = getattr(self, f"{role}_password")
        if configured is not None:
            return configured.get_secret_value()
        stored = self._secrets().get(role)
        if stored is None:
            raise ServiceNotRunning("postgres", f"no {role} password: run `carehouse up` first")
        return stored

    def patient_key_secret(self) -> str:
        """The salt of the pseudonymous patient key: environment first, then the secrets file."""
        if self.patient_key_salt is not None:
            return self.patient_key_salt.get_secret_value()
        stored = self._secrets().get("patient_key_salt")
        if stored is None:
            raise ServiceNotRunning("postgres", "no patient key salt: run `carehouse up` first")
        return stored

    def role_user(self, role: Role) -> str:
        """Database user name of a role."""
        if role == "admin":
            user = urlsplit(self.admin_dsn).username
            return unquote(user) if user else "postgres"
        return ROLE_NAMES[role]

    def dsn(self, role: Role) -> str:
        """A libpq connection string for one role."""
        if role == "admin":
            return self.admin_dsn
        return _dsn(self.role_user(role), self.role_password(role), self.pg_address)

    def for_database(self, database: str) -> Settings:
        """The same server and credentials, pointed at another database (benchmarks, tests)."""
        address = self.pg_address
        admin = _dsn(
            self.role_user("admin"),
            self.role_password("admin"),
            PgAddress(address.host, address.port, database),
        )
        roles: tuple[Role, ...] = ("loader", "transformer", "bi")
        update: dict[str, object] = {
            "database_url": SecretStr(admin),
            # The server may be the embedded one; this database on it is addressed directly.
            "embedded": ",".join(s for s in self.embedded.split(",") if s != "postgres"),
            **{f"{role}_password": SecretStr(self.role_password(role)) for role in roles},
        }
        return self.model_copy(update=update)

    @property
    def kafka(self) -> str:
        """Kafka bootstrap servers."""
        if self.kafka_bootstrap is not None and not self.embedded_kafka:
            return self.kafka_bootstrap
        state = self._service_state("kafka")
        if state is None:
            raise ServiceNotRunning("kafka", "run `carehouse up` first")
        return f"127.0.0.1:{state['port']}"

    @property
    def prefect_api(self) -> str:
        """The Prefect API URL."""
        if self.prefect_api_url is not None and not self.embedded_prefect:
            return self.prefect_api_url
        state = self._service_state("prefect")
        if state is None:
            raise ServiceNotRunning("prefect", "run `carehouse up` first")
        return f"http://127.0.0.1:{state['port']}/api"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME of the embedded server (its SQLite database lives here)."""
        return self.home / "prefect"


class ServiceNotRunning(RuntimeError):
    """An embedded service's state is missing: `carehouse up` has not run."""

    def __init__(self, service: str, hint: str) -> None:
        super().__init__(f"{service} is not running: {hint}")
        self.service = service


def _dsn(user: str, password: str, address: PgAddress) -> str:
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{address.host}:{address.port}/{quote(address.database, safe='')}"
    )


def get_settings() -> Settings:
    """Read the settings from the environment (call once, at an entry point)."""
    return Settings()
