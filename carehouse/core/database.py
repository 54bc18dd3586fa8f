"""Connections to the warehouse, one role at a time, with a readable failure."""

from __future__ import annotations

import psycopg

from carehouse.core.settings import Role, Settings


class DatabaseUnreachable(RuntimeError):
    """The configured Postgres cannot be reached; the message names setting and host."""


def connect(settings: Settings, role: Role, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection as one role, or raise DatabaseUnreachable with one clear line."""
    try:
        return psycopg.connect(
            settings.dsn(role),
            autocommit=autocommit,
            connect_timeout=settings.connect_timeout_s,
            application_name=f"carehouse-{role}",
        )
    except psycopg.OperationalError as err:
        address = settings.pg_address
        setting = "embedded postgres" if settings.embedded_postgres else "CAREHOUSE_DATABASE_URL"
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise DatabaseUnreachable(
            f"cannot reach Postgres ({setting}) at {address.host}:{address.port} "
            f"as {settings.role_user(role)}: {reason}"
        ) from err


def relation_oid(conn: psycopg.Connection, schema: str, name: str) -> int | None:
    """The table's or view's oid, None when missing, whatever the role may read (catalog).

    A relation replaced under the same name (a publish, a rebuild) gets a new oid.
    """
    row = conn.execute(
        """
        select relation.oid::bigint
        from pg_class as relation
        inner join pg_namespace as namespace on namespace.oid = relation.relnamespace
        where namespace.nspname = %s and relation.relname = %s
        """,
        (schema, name),
    ).fetchone()
    return None if row is None else int(row[0])


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    """True when the table or view exists, whatever the role may read (from the catalog)."""
    return relation_oid(conn, schema, name) is not None
