"""The schema's tables are built on first use, and stand in for themselves wherever SQLAlchemy
takes a table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tables_are_built_when_first_used_and_metadata_builds_them_all() -> None:
    # A fresh interpreter: in this one, other tests have built every table already.
    script = textwrap.dedent(
        """
        from sqlalchemy import bindparam, func, insert, select
        from sqlalchemy.dialects import postgresql, sqlite

        from mwallet.core.db import tables

        assert not tables._metadata.tables, sorted(tables._metadata.tables)
        query = (
            select(tables.users.c.phone, tables.accounts.c.balance)
            .select_from(tables.accounts)
            .join(tables.users, tables.users.c.id == tables.accounts.c.owner_user_id)
            .join(tables.recipients, tables.recipients.c.id == tables.users.c.id)
            .where(tables.accounts.c.code == bindparam("code"))
        )
        write = insert(tables.instance_settings).values(key=bindparam("k"), value="v")
        count = select(func.count()).select_from(tables.withdrawals)
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            for statement in (query, write, count):
                statement.compile(dialect=dialect)
        built = set(tables._metadata.tables)
        assert built == {"users", "accounts", "instance_settings", "withdrawals"}, built
        assert len(tables.metadata().tables) > len(built)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
