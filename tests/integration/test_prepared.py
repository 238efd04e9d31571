"""Prepared statements bind what SQLAlchemy would: constants written in the statement, a name bound
at several places, and timestamps converted by their column type, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select

from mwallet.bootstrap import Wallet
from mwallet.core.db.prepared import Prepared
from mwallet.core.db.tables import oauth_clients
from mwallet.core.db.transaction import SqlTransaction

EARLIER = datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
LATER = EARLIER + timedelta(days=400, microseconds=1)
# EARLIER's wall time in Maputo: two hours before it. The same wall time is another instant, and
# the same instant written in another zone is the same one.
MAPUTO = timezone(timedelta(hours=2))
SAME_WALL_TIME = EARLIER.replace(tzinfo=MAPUTO)
SAME_INSTANT = EARLIER.astimezone(MAPUTO)

# A table with two timestamps, one of them nullable; nothing else refers to it here.
_clients = oauth_clients
_insert = Prepared(
    lambda: insert(_clients).values(
        id=bindparam("id"),
        kind="PreparedTest",  # a constant of the statement
        name=bindparam("id"),  # the same name bound twice
        scopes="",
        secret_digest="-",
        created_at=bindparam("at"),
        disabled_at=bindparam("disabled"),
    )
)
_read = Prepared(
    lambda: select(
        _clients.c.kind, _clients.c.name, _clients.c.created_at, _clients.c.disabled_at
    ).where(_clients.c.id == bindparam("id"), _clients.c.created_at == bindparam("at"))
)


def test_prepared_statements_bind_constants_repeated_names_and_timestamps(wallet: Wallet) -> None:
    pooled = wallet.engine.raw_connection()
    try:
        sql = SqlTransaction(pooled.driver_connection, wallet.engine.dialect, write=True)
        # The same instants in turn, in both columns: each is converted to its own value.
        sql.write(_insert, {"id": "01PREPAREDTEST000000000001", "at": EARLIER, "disabled": LATER})
        sql.write(_insert, {"id": "01PREPAREDTEST000000000002", "at": LATER, "disabled": EARLIER})
        sql.write(_insert, {"id": "01PREPAREDTEST000000000003", "at": LATER, "disabled": None})
        # Right after EARLIER: its wall time elsewhere, and its instant written elsewhere.
        elsewhere = {"at": EARLIER, "disabled": SAME_WALL_TIME}
        sql.write(_insert, {"id": "01PREPAREDTEST000000000005", **elsewhere})
        sql.write(
            _insert, {"id": "01PREPAREDTEST000000000006", "at": SAME_INSTANT, "disabled": EARLIER}
        )
        rows = [
            sql.one(_read, {"id": f"01PREPAREDTEST00000000000{number}", "at": at})
            for number, at in ((1, EARLIER), (2, LATER), (3, LATER), (5, EARLIER), (6, EARLIER))
        ]
        assert rows == [
            ("PreparedTest", "01PREPAREDTEST000000000001", EARLIER, LATER),
            ("PreparedTest", "01PREPAREDTEST000000000002", LATER, EARLIER),
            ("PreparedTest", "01PREPAREDTEST000000000003", LATER, None),
            ("PreparedTest", "01PREPAREDTEST000000000005", EARLIER, EARLIER - timedelta(hours=2)),
            ("PreparedTest", "01PREPAREDTEST000000000006", EARLIER, EARLIER),
        ]
        # A naive timestamp is refused, even right after an aware one of the same wall time.
        with pytest.raises(ValueError, match="timezone-aware"):
            sql.write(
                _insert,
                {
                    "id": "01PREPAREDTEST000000000004",
                    "at": LATER.replace(tzinfo=None),
                    "disabled": None,
                },
            )
        sql.rollback()
        sql.close()
    finally:
        pooled.close()


_awkward = "it's 100% \\ {}"  # a quote, a percent sign, a backslash: bound, not written in
_by_constants = Prepared(
    lambda: select(_clients.c.id).where(
        _clients.c.kind == "PreparedTest",
        _clients.c.scopes != _awkward,
        _clients.c.created_at >= bindparam("at"),
    )
)


def test_plain_constants_are_written_into_the_sql_and_others_bound(wallet: Wallet) -> None:
    compiled = _by_constants.compiled(wallet.engine.dialect)
    assert "'PreparedTest'" in compiled.sql
    assert list(compiled.constants.values()) == [_awkward]
    assert sorted(set(compiled.names)) == sorted(["at", *compiled.constants])
    pooled = wallet.engine.raw_connection()
    try:
        sql = SqlTransaction(pooled.driver_connection, wallet.engine.dialect, write=True)
        sql.write(_insert, {"id": "01PREPAREDTEST000000000007", "at": EARLIER, "disabled": None})
        assert sql.all(_by_constants, {"at": EARLIER}) == [("01PREPAREDTEST000000000007",)]
        assert sql.all(_by_constants, {"at": LATER}) == []
        sql.rollback()
        sql.close()
    finally:
        pooled.close()
