"""Engines for the two supported databases, configured for durability and safe concurrency.

SQLite: WAL journal with `synchronous=FULL` (an acknowledged commit survives a power cut), foreign
keys on, and `BEGIN IMMEDIATE` for writing transactions so two writers queue on the write lock
instead of deadlocking on an upgrade from a read lock. PostgreSQL: writes run READ COMMITTED and
move money by conditional updates taken in a fixed order, so concurrent transfers neither
overdraw nor deadlock; reads run REPEATABLE READ READ ONLY, one snapshot per unit of work.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from mwallet.core.errors import ConfigurationError

# How long a SQLite writer waits for the write lock before giving up (`DatabaseBusy`: not retried,
# it has waited already).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL sessions: a statement waits for a row's lock (an account another transfer holds) as
# long as a SQLite writer waits for its lock, then gives up (`DatabaseBusy`); a session left idle
# inside a transaction (a client stopped, hung or cut off while holding locks) is ended by the
# server after five minutes, its locks released, instead of blocking those accounts until TCP
# notices. A URL's own `options` come after these, and win (`?options=-c lock_timeout=5s`).
PG_SESSION_OPTIONS = (
    f"-c lock_timeout={SQLITE_BUSY_TIMEOUT_MS} -c idle_in_transaction_session_timeout=300000"
)
PG_CONNECT_TIMEOUT_S = 10  # unless the URL says (`?connect_timeout=`)
BEGIN_OPTION = "mwallet_begin"
WAL_SWITCH_ATTEMPTS = 250  # x 20 ms: five seconds


def normalize_url(url: str) -> str:
    """Accept the URL spellings people use; PostgreSQL always goes through psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigurationError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # No reset when a connection goes back to the pool: every unit of work ends its own
    # transaction (commit, or rollback in __exit__), so a reset would be a wasted call.
    # Overflow beyond `pool_size`, as SQLite's default pool has too: while the pool is in it, units
    # of work give their connections back to it (`unit_of_work.IdleConnections`).
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_reset_on_return=None,
        connect_args=_pg_connect_args(url),
    )


def _pg_connect_args(url: str) -> dict[str, Any]:
    """The session options and connect timeout (see `PG_SESSION_OPTIONS`), the environment's
    (`PGOPTIONS`, `PGCONNECT_TIMEOUT`) and then the URL's own after them to override them.

    libpq reads `PGOPTIONS` only when the connection is given no `options`: ours would silently
    drop a deployment's (a `search_path`, say), so they are passed on, in between."""
    query = make_url(url).query
    given = query.get("options")
    options = [
        PG_SESSION_OPTIONS,
        *filter(None, [os.environ.get("PGOPTIONS")]),
        *([given] if isinstance(given, str) else given or ()),
    ]
    args: dict[str, Any] = {"options": " ".join(options)}
    if "connect_timeout" not in query and not os.environ.get("PGCONNECT_TIMEOUT"):
        args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return args


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be shared: use a file")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_reset_on_return=None,  # every unit of work ends its own transaction
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's `begin` event issue BEGIN, not the driver's own guesswork.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")
        # Straight to the driver: this runs once per unit of work, on the hot path.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL. On a brand-new file the first connections race to do it, and SQLite may
    answer "locked" at once rather than wait, so the switch is tried again for a while."""
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(0.02)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
