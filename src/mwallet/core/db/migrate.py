"""Bring a database to the newest schema, on first use, safely when several processes start at once.

Opening a database costs one query when it is current: the version is compared with `HEAD`, and
Alembic (slow to import) is loaded only when there is something to upgrade.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from mwallet.core.db.engine import BEGIN_OPTION, is_sqlite
from mwallet.core.db.errors import translate
from mwallet.core.errors import ConfigurationError

# The newest revision in migrations/versions; a test keeps the two in step.
HEAD = "0020"
MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: the PostgreSQL advisory lock that serialises concurrent upgrades.
_PG_MIGRATION_LOCK = 0x6D77616C6C6574  # "mwallet"


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to HEAD unless it is there already."""
    try:
        _ensure_schema(engine)
    except DBAPIError as exc:
        translated = translate(exc)
        if translated is exc:
            raise
        raise translated from exc


def _ensure_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(**{BEGIN_OPTION: "DEFERRED"})
        current = current_revision(conn)
    if current == HEAD:
        return
    if current is not None and current not in known_revisions():
        raise ConfigurationError(
            f"this database is at schema revision {current!r}, which this mwallet does not "
            "know: it was made by a newer release; upgrade mwallet"
        )
    upgrade(engine)


def known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            if not is_sqlite(engine):
                # Another process's upgrade holds it for as long as its migrations take, which
                # may be far past the session's `lock_timeout` (engine.py): wait it out, then
                # the migrations' own statements have that limit again.
                conn.execute(text("SET LOCAL lock_timeout = 0"))
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
