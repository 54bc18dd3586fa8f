"""Apply the numbered, idempotent sql/ bootstrap and set the roles' passwords."""

from __future__ import annotations

from psycopg import sql

from carehouse.core.database import connect
from carehouse.core.settings import ROLE_NAMES, Settings


def sql_files(settings: Settings) -> list[str]:
    """The bootstrap files, in the order they run."""
    return sorted(str(path) for path in settings.sql_dir.glob("[0-9][0-9][0-9]_*.sql"))


def bootstrap(settings: Settings) -> list[str]:
    """Run every bootstrap file as admin in one transaction; returns the files applied."""
    files = sql_files(settings)
    with connect(settings, "admin") as conn, conn.transaction():
        # Two bootstraps at once (two `up`s) would race on CREATE ROLE.
        conn.execute("select pg_advisory_xact_lock(hashtext('carehouse.bootstrap'))")
        for path in files:
            with open(path, encoding="utf-8") as handle:
                conn.execute(handle.read().encode())
        for role, user in ROLE_NAMES.items():
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(user), sql.Literal(settings.role_password(role))
                )
            )
    return files
