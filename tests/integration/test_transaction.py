"""`SqlTransaction` on both databases: on PostgreSQL, queued plain inserts go out as one statement
(`WITH w0 AS (INSERT ...) INSERT ...`); what they write, the errors they raise, and what must keep
them apart (a savepoint mark, a statement whose count is read later, an UPDATE, a second insert
into the same table). On SQLite each statement runs as it comes, and the same things hold."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    Insert,
    bindparam,
    create_engine,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement

from mwallet.bootstrap import Wallet
from mwallet.core.db.errors import translate
from mwallet.core.db.prepared import InsertPart, Prepared, insert_into
from mwallet.core.db.tables import accounts, journal_entries, outbox, postings
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.db.unit_of_work import SqlUnitOfWork
from mwallet.core.domain.ledger import wallet_account_code
from mwallet.core.errors import ConcurrencyConflict, LedgerInvariantBroken
from tests.support import START, register

_entry = Prepared(
    lambda: insert_into(journal_entries, "id", "kind", "created_at", "memo", "ref_id")
)


def _posting_statement() -> Insert:
    return insert_into(
        postings,
        "entry_id",
        "leg",
        "account_id",
        "amount",
        "currency",
        "balance_after",
        "created_at",
    )


_posting = Prepared(_posting_statement)
_event = Prepared(
    lambda: insert_into(outbox, "event_id", "event_type", "aggregate_id", "payload", "created_at")
)
_restamp = Prepared(
    lambda: (
        update(outbox)
        .where(outbox.c.event_id == bindparam("event_id"))
        .values(created_at=bindparam("at"))
    )
)
_event_count = Prepared(lambda: select(func.count()).select_from(outbox))
_newest_event = Prepared(lambda: select(func.max(outbox.c.event_id)))

ENTRY = "01KF0000000000000000000001"


def entry(entry_id: str = ENTRY) -> dict[str, Any]:
    return {"id": entry_id, "kind": "transfer", "created_at": START, "memo": None, "ref_id": None}


def posting(
    account_id: int, amount: int, entry_id: str = ENTRY, *, later: int = 0
) -> dict[str, Any]:
    """A posting's row; `later`: microseconds after START (an account's postings each have a
    time of their own), and its number in the entry too."""
    return {
        "entry_id": entry_id,
        "leg": later,
        "account_id": account_id,
        "amount": amount,
        "currency": "USD",
        "balance_after": 0,
        "created_at": START + timedelta(microseconds=later),
    }


def event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "test",
        "aggregate_id": ENTRY,
        "payload": "{}",
        "created_at": START,
    }


def shape(sql: str) -> str:
    """A statement in short: the tables an INSERT (merged or not) writes, or its first words."""
    if tables := re.findall(r"INSERT INTO (\w+)", sql):
        return "INSERT " + "+".join(tables)
    first, second, *_ = [*sql.split(), ""]
    return {"SELECT": "SELECT", "UPDATE": f"UPDATE {second}"}.get(first, sql)


@contextmanager
def transaction(wallet: Wallet, sent: list[str]) -> Iterator[SqlTransaction]:
    """A write transaction on a pooled connection; on PostgreSQL, each statement it sends is
    recorded in `sent` (by a cursor class of the driver's, which `SqlTransaction` is given)."""
    pooled = wallet.engine.raw_connection()
    driver = pooled.driver_connection
    pipelined = wallet.engine.dialect.name == "postgresql"
    if pipelined:

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                sent.append(shape(str(query)))
                return super().execute(query, params, **kwargs)

        driver.cursor_factory = Recording  # type: ignore[union-attr]
    sql = SqlTransaction(driver, wallet.engine.dialect, write=True)
    try:
        yield sql
    finally:
        try:
            sql.rollback()
            sql.close()
        finally:
            if pipelined:
                driver.cursor_factory = psycopg.Cursor  # type: ignore[union-attr]
            pooled.close()


def wallet_account(wallet: Wallet) -> int:
    user = register(wallet.service)
    with SqlUnitOfWork(wallet.engine).read_only() as uow:
        account_id = uow.ledger.account_id(wallet_account_code(user.user_id))
    assert account_id is not None
    return account_id


def stored(wallet: Wallet) -> tuple[list[str], list[int], list[str]]:
    """The test's rows: entries, posting amounts, event ids (in the order they were given ids)."""
    with wallet.engine.connect() as conn:
        entries = conn.execute(text(f"SELECT id FROM journal_entries WHERE id = '{ENTRY}'"))
        amounts = conn.execute(
            text(f"SELECT amount FROM postings WHERE entry_id = '{ENTRY}' ORDER BY leg")
        )
        events = conn.execute(
            text("SELECT event_id FROM outbox WHERE event_type = 'test' ORDER BY event_id")
        )
        return (
            [str(row[0]) for row in entries],
            [int(row[0]) for row in amounts],
            [str(row[0]) for row in events],
        )


def test_queued_inserts_go_out_as_one_statement_and_all_land(wallet: Wallet) -> None:
    """The postings refer to the entry inserted beside them, in the same statement."""
    account_id = wallet_account(wallet)
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_entry, entry())
        sql.write(_posting, posting(account_id, 5))
        sql.write(_event, event("e1"))
        sql.commit()
    assert stored(wallet) == ([ENTRY], [5], ["e1"])
    if sent:  # PostgreSQL
        assert sent == ["BEGIN", "INSERT journal_entries+postings+outbox", "COMMIT"]


@pytest.mark.parametrize(
    ("refused", "translated", "message"),
    [
        ("amount", LedgerInvariantBroken, r"(?i)amount_not_zero|check constraint"),
        ("event_id", ConcurrencyConflict, r"(?i)unique|duplicate"),
        ("entry_id", None, r"(?i)foreign key"),
    ],
)
def test_a_refused_insert_in_a_merge_raises_what_callers_map(
    wallet: Wallet, backend: str, refused: str, translated: type[Exception] | None, message: str
) -> None:
    """A check, unique or foreign key violation in any part fails the whole statement with the
    driver's own error (which `errors.translate` maps as before), and nothing of it lands."""
    account_id = wallet_account(wallet)
    with transaction(wallet, []) as sql:
        sql.write(_event, event("taken"))
        sql.commit()
    sent: list[str] = []
    missing_entry = "01KFN0SUCHENTRY00000000000"

    def refused_statement() -> None:
        with transaction(wallet, sent) as sql:
            sql.write(_entry, entry())
            sql.write(
                _posting,
                posting(
                    account_id,
                    0 if refused == "amount" else 5,
                    missing_entry if refused == "entry_id" else ENTRY,
                ),
            )
            sql.write(_event, event("taken" if refused == "event_id" else "e1"))
            sql.commit()

    with pytest.raises(Exception, match=message) as raised:
        refused_statement()
    if backend == "postgresql":
        assert "INSERT journal_entries+postings+outbox" in sent
        if translated is not None:
            assert isinstance(translate(raised.value), translated)
    elif translated is LedgerInvariantBroken:
        assert isinstance(translate(raised.value), translated)
    assert stored(wallet) == ([], [], ["taken"])


def test_a_savepoint_mark_that_went_out_splits_the_inserts_around_it(wallet: Wallet) -> None:
    account_id = wallet_account(wallet)
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_entry, entry())
        sql.savepoint()
        sql.write(_event, event("undone"))
        assert sql.one(_event_count, {}) is not None  # the mark and both inserts go out
        sql.rollback_to_savepoint()
        sql.write(_posting, posting(account_id, 5))
        sql.commit()
    assert stored(wallet) == ([ENTRY], [5], [])
    if sent:
        assert sent == [
            "BEGIN",
            "INSERT journal_entries",
            "SAVEPOINT mwallet_mark",
            "INSERT outbox",
            "SELECT",
            "ROLLBACK TO SAVEPOINT mwallet_mark",
            "INSERT postings",
            "COMMIT",
        ]


def test_inserts_dropped_unsent_with_their_mark_leave_the_rest_to_merge(wallet: Wallet) -> None:
    account_id = wallet_account(wallet)
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_entry, entry())
        sql.savepoint()
        sql.write(_event, event("undone"))
        sql.rollback_to_savepoint()  # the mark never went out: it and what follows are dropped
        sql.write(_posting, posting(account_id, 5))
        sql.write(_event, event("kept"))
        sql.commit()
    assert stored(wallet) == ([ENTRY], [5], ["kept"])
    if sent:
        assert sent == ["BEGIN", "INSERT journal_entries+postings+outbox", "COMMIT"]


def test_an_update_or_a_count_read_later_splits_a_merge(wallet: Wallet) -> None:
    """Statements in one merged statement would not see each other's changes: an UPDATE (even
    one whose result nobody reads) never joins one, nor does a statement read later."""
    account_id = wallet_account(wallet)
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_event, event("e1"))
        restamped = sql.count_later(_restamp, {"event_id": "e1", "at": START})
        sql.write(_entry, entry())
        sql.write(_restamp, {"event_id": "e1", "at": START})
        sql.write(_posting, posting(account_id, 5))
        sql.commit()
        assert restamped() == 1  # it saw the insert before it
    assert stored(wallet) == ([ENTRY], [5], ["e1"])
    if sent:
        assert sent == [
            "BEGIN",
            "INSERT outbox",
            "UPDATE outbox",
            "INSERT journal_entries",
            "UPDATE outbox",
            "INSERT postings",
            "COMMIT",
        ]


def test_inserts_into_one_table_go_out_apart_and_in_order(wallet: Wallet) -> None:
    """Two inserts into one table are never merged: the server would not keep their order."""
    account_id = wallet_account(wallet)
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_entry, entry())
        sql.write(_posting, posting(account_id, 5))
        sql.write(_posting, posting(account_id, -5, later=1))
        sql.write(_event, event("e1"))
        sql.write(_posting, posting(account_id, 7, later=2))
        sql.commit()
    assert stored(wallet) == ([ENTRY], [5, -5, 7], ["e1"])
    if sent:
        assert sent == [
            "BEGIN",
            "INSERT journal_entries+postings",
            "INSERT postings+outbox",
            "INSERT postings",
            "COMMIT",
        ]


def test_only_plain_inserts_are_merged() -> None:
    """Decided once per compiled statement: an upsert, an INSERT ... RETURNING (asked for, or
    added by SQLAlchemy for a generated key), an INSERT ... SELECT or an UPDATE is never part of
    a merged statement."""
    dialect = create_engine("postgresql+psycopg://").dialect  # compiles; never connects

    def part_of(statement: ClauseElement) -> InsertPart | None:
        return Prepared(lambda: statement).compiled(dialect).insert_part

    upsert = postgresql.insert(outbox).values(event_id=bindparam("event_id"))
    never = [
        upsert.on_conflict_do_nothing(),
        postgresql.insert(outbox)
        .values(event_id=bindparam("event_id"))
        .returning(outbox.c.event_id),
        insert(accounts).values(code=bindparam("code")),  # RETURNING accounts.id
        update(outbox).values(created_at=bindparam("at")),
        insert(outbox).from_select(["event_id"], select(journal_entries.c.id)),
    ]
    assert [part_of(statement) for statement in never] == [None] * len(never)
    part = part_of(_posting_statement())
    assert part is not None
    assert part.table == "postings"
    assert "%(" not in part.sql
    assert part.pick(posting(7, 5)) == (ENTRY, 0, 7, 5, "USD", 0, posting(7, 5)["created_at"])
    assert _posting.compiled(create_engine("sqlite://").dialect).insert_part is None


def test_a_query_read_later_goes_out_with_the_next_read(wallet: Wallet) -> None:
    """`one_later` (what lets a transfer read the sender's terms in the claim's round trip):
    its rows are those of the moment it goes out, after what was queued before it."""
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_event, event("e1"))
        events_then = sql.one_later(_event_count, {})
        sql.write(_event, event("e2"))
        assert sql.one(_event_count, {}) == (2,)  # the round trip that carries the later query
        assert events_then() == (1,)
        sql.commit()
    if sent:
        assert sent == ["BEGIN", "INSERT outbox", "SELECT", "INSERT outbox", "SELECT", "COMMIT"]


def test_a_query_read_later_is_sent_when_asked_for_first(wallet: Wallet) -> None:
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_event, event("e1"))
        events_then = sql.one_later(_event_count, {})
        assert events_then() == (1,)
        assert events_then() == (1,)  # asked again: not sent again
        sql.commit()
    if sent:
        assert sent == ["BEGIN", "INSERT outbox", "SELECT", "COMMIT"]


def test_reads_queued_after_a_mark_keep_their_answers_when_it_is_gone_back_to(
    wallet: Wallet,
) -> None:
    """A count or a query read later that was queued after the mark answers after a rollback to
    it as it does on SQLite (where it ran at once): with what it saw before the rollback. Not
    sent yet, PostgreSQL would otherwise leave its cursor with no result at all."""
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.write(_event, event("e1"))
        sql.savepoint()
        sql.write(_event, event("e2"))
        events_then = sql.one_later(_event_count, {})
        restamped = sql.count_later(_restamp, {"event_id": "e1", "at": START})
        sql.rollback_to_savepoint()
        assert events_then() == (2,)
        assert restamped() == 1
        assert sql.one(_event_count, {}) == (1,)  # the rollback undid e2
        sql.commit()
    assert stored(wallet)[2] == ["e1"]


def test_a_rollback_goes_back_to_the_latest_mark_even_unsent(wallet: Wallet) -> None:
    """As both databases do with one savepoint name set twice: back to the later mark only."""
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.savepoint()
        sql.write(_event, event("e1"))
        sql.savepoint()
        sql.write(_event, event("e2"))
        sql.rollback_to_savepoint()
        sql.commit()
    assert stored(wallet)[2] == ["e1"]


def test_writes_after_the_last_read_later_are_still_dropped_unsent(wallet: Wallet) -> None:
    back = "ROLLBACK TO SAVEPOINT mwallet_mark"
    sent: list[str] = []
    with transaction(wallet, sent) as sql:
        sql.savepoint()
        events_then = sql.one_later(_event_count, {})
        sql.write(_event, event("e1"))
        sql.rollback_to_savepoint()
        assert events_then() == (0,)
        sql.commit()
    assert stored(wallet)[2] == []
    if sent:
        assert sent == ["BEGIN", "SAVEPOINT mwallet_mark", "SELECT", back, "COMMIT"]


def test_kept_cursors_serve_the_next_transactions_on_their_connection(wallet: Wallet) -> None:
    """On PostgreSQL a transaction given its pooled connection's dictionary (`kept`) leaves its
    cursors there for the next one: each still reads its own results, a result read later is
    refused once its connection has gone back (its cursor may hold another's by then), and a
    connection the pool drops takes its cursors with it."""
    dialect = wallet.engine.dialect
    pooled = wallet.engine.raw_connection()
    try:
        first = SqlTransaction(pooled.driver_connection, dialect, write=True, kept=pooled.info)
        first.write(_event, event("e1"))
        restamped = first.count_later(_restamp, {"event_id": "e1", "at": START})
        unread = first.one_later(_event_count, {})
        first.commit()
        assert restamped() == 1  # after the commit, the connection not yet given back
        first.close()
        second = SqlTransaction(pooled.driver_connection, dialect, write=True, kept=pooled.info)
        second.write(_event, event("e2"))
        again = second.count_later(_restamp, {"event_id": "e2", "at": START})
        total = second.one_later(_event_count, {})
        assert (total(), again()) == ((2,), 1)
        second.commit()
        second.close()
        assert restamped() == 1  # read while it was its own: remembered
        if dialect.name == "postgresql":
            with pytest.raises(RuntimeError, match="after its connection"):
                unread()
        else:  # SQLite ran it at once
            assert unread() == (1,)
        pooled.invalidate()  # dropped by the pool, with what was kept for it
    finally:
        pooled.close()
    pooled = wallet.engine.raw_connection()
    try:
        third = SqlTransaction(pooled.driver_connection, dialect, write=True, kept=pooled.info)
        third.write(_event, event("e3"))
        assert third.one(_event_count, {}) == (3,)
        third.commit()
        third.close()
    finally:
        pooled.close()


# The wire is PostgreSQL's: SQLite runs its statements one by one on its own driver.
postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@contextmanager
def kept_connection(wallet: Wallet) -> Iterator[tuple[Any, dict[Any, Any]]]:
    """One pooled PostgreSQL connection and what is kept for it (tests `postgresql_only`)."""
    assert wallet.engine.dialect.name == "postgresql"
    pooled = wallet.engine.raw_connection()
    try:
        yield pooled.driver_connection, pooled.info
    finally:
        pooled.close()


def written_and_counted(wallet: Wallet, driver: Any, kept: Any, event_id: str) -> Any:
    """One writing transaction: an event queued, then a count that sends both in a round trip."""
    sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
    try:
        sql.write(_event, event(event_id))
        counted = sql.one(_event_count, {})
        sql.commit()
        return counted
    finally:
        sql.rollback()
        sql.close()


@postgresql_only
def test_a_writers_statements_are_prepared_once_and_outlive_readers(
    wallet: Wallet,
) -> None:
    """On PostgreSQL each statement of a writer is prepared the first time its connection sends
    it, and only then; the readers on the same connection end with COMMIT (after a ROLLBACK
    psycopg would send DEALLOCATE ALL), so the writer's statements stay, and so do those psycopg
    prepared for the readers."""
    with kept_connection(wallet) as (driver, kept):
        assert written_and_counted(wallet, driver, kept, "e1") == (1,)
        for _ in range(7):  # more than psycopg's prepare threshold
            reader = SqlTransaction(driver, wallet.engine.dialect, write=False)
            assert reader.one(_event_count, {}) == (1,)
            reader.rollback()
            reader.close()
        assert written_and_counted(wallet, driver, kept, "e2") == (2,)
        prepared = [
            (str(name), str(statement))
            for name, statement in driver.execute(
                "SELECT name, statement FROM pg_prepared_statements"
            ).fetchall()
        ]
        driver.rollback()
    wire = [statement for name, statement in prepared if name.startswith("mwallet_")]
    assert len(wire) == len(set(wire)) == 4  # BEGIN, the insert, the count, COMMIT
    assert any(not name.startswith("mwallet_") for name, _ in prepared)  # the readers'


@postgresql_only
def test_an_error_in_a_round_trip_raises_the_drivers_error_and_the_wire_goes_on(
    wallet: Wallet,
) -> None:
    """The first error of a round trip is raised as psycopg raises it (so `errors.translate`
    maps it as before), the statements after it do not run, and one prepared in that round trip
    is prepared again next time."""
    with kept_connection(wallet) as (driver, kept):
        assert written_and_counted(wallet, driver, kept, "taken") == (1,)
        sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
        try:
            sql.write(_event, event("taken"))
            with pytest.raises(psycopg.errors.UniqueViolation) as raised:
                sql.one(_newest_event, {})  # first sent, and prepared, after the error
        finally:
            sql.rollback()
            sql.close()
        assert isinstance(translate(raised.value), ConcurrencyConflict)
        assert written_and_counted(wallet, driver, kept, "e2") == (2,)
        sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
        try:
            assert sql.one(_newest_event, {}) == ("taken",)
            sql.commit()
        finally:
            sql.close()
    assert stored(wallet)[2] == ["e2", "taken"]


@postgresql_only
def test_statements_past_the_limit_of_prepared_ones_go_unnamed(
    wallet: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mwallet.core.db.transaction import _Wire

    monkeypatch.setattr(_Wire, "MAX_PREPARED", 1)
    with kept_connection(wallet) as (driver, kept):
        assert written_and_counted(wallet, driver, kept, "e1") == (1,)
        assert written_and_counted(wallet, driver, kept, "e2") == (2,)
        (prepared,) = driver.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        driver.rollback()
    assert prepared == 1


@postgresql_only
def test_a_psycopg_without_the_wires_parts_sends_through_its_own_pipeline(
    wallet: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire builds on psycopg's internals: should a release lack them, writers still work,
    through psycopg's own pipeline (and prepare nothing of the wire's)."""
    from mwallet.core.db.transaction import _Wire

    def missing(self: _Wire, driver: Any) -> None:
        raise AttributeError("no such part")

    monkeypatch.setattr(_Wire, "__init__", missing)
    with kept_connection(wallet) as (driver, _):
        assert written_and_counted(wallet, driver, {}, "e1") == (1,)
        (prepared,) = driver.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        driver.rollback()
    assert prepared == 0
    assert stored(wallet)[2] == ["e1"]
