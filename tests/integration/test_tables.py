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


def test_threads_meeting_unbuilt_tables_at_once_build_each_once() -> None:
    """The server's threads use tables on their first requests together: each table is built
    once (a second `Table` of the same name would be refused) and all see that one."""
    script = textwrap.dedent(
        """
        import sys
        import threading

        from mwallet.core.db import tables

        sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows
        names = [name for name, value in vars(tables).items() if isinstance(value, tables._Later)]
        start = threading.Barrier(8)
        seen, failures = [], []

        def use_them_all() -> None:
            start.wait()
            try:
                seen.append([id(getattr(tables, name).__clause_element__()) for name in names])
            except Exception as error:
                failures.append(repr(error))

        threads = [threading.Thread(target=use_them_all) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], failures[:2]
        assert all(ids == seen[0] for ids in seen), "threads were given different tables"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
