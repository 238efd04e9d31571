"""Alembic's environment: runs on the connection `mwallet.core.db.migrate` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mwallet.core.db.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - `alembic` run by hand
    from mwallet.core.db.engine import make_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise SystemExit("set sqlalchemy.url, or let mwallet run its own migrations")
    with make_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=metadata(), render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata(), render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
