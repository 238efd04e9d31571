"""The PostgreSQL writers' `_Wire` under faults: an interrupted round trip, a statement that
could not be sent, a result whose statement never ran, a backend that went away; and the
values it sends and loads, against psycopg's own cursors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, select

from mwallet.bootstrap import Wallet
from mwallet.core.db.prepared import Prepared
from mwallet.core.db.transaction import SqlTransaction, _Wire
from mwallet.core.db.unit_of_work import SqlUnitOfWork
from mwallet.core.errors import StorageUnavailable
from mwallet.core.services.wallet_service import retrying
from tests.integration.test_transaction import (
    _event,
    _event_count,
    _restamp,
    event,
    kept_connection,
    postgresql_only,
    stored,
)
from tests.support import START


def _events(wallet: Wallet) -> list[str]:
    return stored(wallet)[2]


def _interrupted_unit_of_work(wallet: Wallet, drivers: list[Any]) -> None:
    """A unit of work interrupted while reading the answers of its first round trip (its
    driver connection put in `drivers`)."""
    with SqlUnitOfWork(wallet.engine) as uow:
        sql = uow._sql
        assert sql is not None
        wire = sql._sender
        assert isinstance(wire, _Wire)
        drivers.append(sql._driver)
        fetched = wire._fetch_many
        calls = 0

        def interrupted(pgconn: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:  # BEGIN's answer read, the insert's and the count's not
                raise KeyboardInterrupt
            return fetched(pgconn)

        wire._fetch_many = interrupted
        sql.write(_event, event("e1"))
        sql.one(_event_count, {})
        uow.commit()


@postgresql_only
def test_an_interrupted_round_trip_drops_the_connection_and_commits_nothing(
    wallet: Wallet,
) -> None:
    """Ctrl-C (or any exception) while a round trip's answers are being read leaves answers
    unread on the connection: it must not serve anyone again (the next statement would be given
    the old answers), the interrupt is what the caller sees, and nothing of it is committed."""
    drivers: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        _interrupted_unit_of_work(wallet, drivers)
    (driver,) = drivers
    assert driver.closed
    for name in ("e2", "e3"):  # the pool's connections serve on
        with SqlUnitOfWork(wallet.engine) as uow:
            assert uow._sql is not None
            uow._sql.write(_event, event(name))
            uow.commit()
    assert _events(wallet) == ["e2", "e3"]


@postgresql_only
def test_a_statement_that_cannot_be_sent_leaves_no_name_for_one_never_prepared(
    wallet: Wallet,
) -> None:
    """A value that cannot be adapted fails the round trip before anything is sent: a statement
    named earlier in that same round trip was never prepared, and must be next time."""
    with kept_connection(wallet) as (driver, _):
        wire = _Wire(driver)
        first = wire.cursor()

        def both() -> None:
            with wire.pipeline():
                first.execute("SELECT %(a)s::int + 1", {"a": 1})
                wire.cursor().execute("SELECT %(b)s", {"b": object()})

        with pytest.raises(psycopg.ProgrammingError):
            both()
        first.execute("SELECT %(a)s::int + 1", {"a": 1})
        assert first.fetchall() == [(2,)]
        driver.rollback()


@postgresql_only
def test_a_result_whose_statement_never_ran_is_not_read_as_an_older_one(
    wallet: Wallet,
) -> None:
    """A count read later whose statement came after a failed one never ran: asked for, it
    raises, rather than answer what its cursor held from an earlier transaction."""
    with kept_connection(wallet) as (driver, kept):
        sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
        try:
            sql.write(_event, event("e1"))
            restamped = sql.count_later(_restamp, {"event_id": "e1", "at": START})
            assert restamped() == 1
            sql.commit()
        finally:
            sql.close()
        sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
        try:
            sql.write(_event, event("e1"))  # taken: the round trip fails here
            restamped = sql.count_later(_restamp, {"event_id": "e1", "at": START})
            with pytest.raises(psycopg.errors.UniqueViolation):
                sql.one(_event_count, {})
            with pytest.raises(psycopg.Error):
                restamped()
        finally:
            sql.rollback()
            sql.close()


@postgresql_only
def test_a_statement_prepared_before_an_error_in_its_round_trip_is_not_prepared_again(
    wallet: Wallet,
) -> None:
    """Prepared statements outlive a failed transaction: one prepared before the error of its
    round trip keeps its name (else each failure would leave one more on the server)."""
    with kept_connection(wallet) as (driver, kept):
        driver.execute(  # taken by a statement of psycopg's, before the wire sends any
            "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, created_at)"
            " VALUES ('e1', 'test', 'a', '{}', 0)"
        )
        driver.commit()
        for _ in range(3):
            sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
            try:
                sql.write(_event, event("e1"))  # taken
                with pytest.raises(psycopg.errors.UniqueViolation):
                    sql.one(_event_count, {})
            finally:
                sql.rollback()
                sql.close()
        (prepared,) = driver.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        driver.rollback()
    assert prepared == 3  # BEGIN, the insert, ROLLBACK; the count never was


@postgresql_only
def test_a_row_that_cannot_be_loaded_raises_when_read_and_the_round_trip_goes_on(
    wallet: Wallet,
) -> None:
    """As with psycopg's cursors, which load rows as they are fetched: a value Python cannot
    hold raises when its row is read, the statements after it ran, and the connection serves on."""
    with kept_connection(wallet) as (driver, _):
        wire = _Wire(driver)
        unloadable, after = wire.cursor(), wire.cursor()
        with wire.pipeline():
            unloadable.execute("SELECT 'infinity'::date")
            after.execute("SELECT 1")
        assert after.fetchall() == [(1,)]
        with pytest.raises(psycopg.DataError):
            unloadable.fetchone()
        with pytest.raises(psycopg.DataError):
            driver.execute("SELECT 'infinity'::date").fetchone()
        driver.rollback()
        after.execute("SELECT 2")
        assert after.fetchall() == [(2,)]


@postgresql_only
def test_statements_whose_plan_a_migration_changed_are_prepared_again(wallet: Wallet) -> None:
    """A column's type changed (a migration, run by another connection) while a writer's
    statement returning it is prepared: PostgreSQL refuses to run it ("cached plan must not
    change result type"), for that unit of work only; the next prepares it again."""
    url = wallet.engine.url
    with (
        kept_connection(wallet) as (driver, _),
        psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        ) as other,
    ):
        other.execute("CREATE TABLE wire_plan (a integer)")
        other.execute("INSERT INTO wire_plan VALUES (1)")
        wire = _Wire(driver)
        result = wire.cursor()
        result.execute("SELECT a FROM wire_plan")
        assert result.fetchall() == [(1,)]
        other.execute("ALTER TABLE wire_plan ALTER a TYPE text")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            result.execute("SELECT a FROM wire_plan")
        result.execute("SELECT a FROM wire_plan")
        assert result.fetchall() == [("1",)]
        driver.rollback()


@postgresql_only
def test_a_commit_of_a_failed_transaction_raises(wallet: Wallet) -> None:
    """PostgreSQL answers a COMMIT of a failed transaction by rolling it back, without an error
    (its tag says ROLLBACK): should a caller go on after an error and commit, the commit must
    not pass for one."""
    with SqlUnitOfWork(wallet.engine) as uow:
        assert uow._sql is not None
        uow._sql.write(_event, event("e1"))
        uow.commit()
    with SqlUnitOfWork(wallet.engine) as uow:
        sql = uow._sql
        assert sql is not None
        sql.write(_event, event("e2"))
        sql.one(_event_count, {})
        sql.write(_event, event("e1"))  # taken
        with pytest.raises(psycopg.errors.UniqueViolation):
            sql.one(_event_count, {})
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            uow.commit()
        with pytest.raises(RuntimeError, match="transaction ended"):
            sql.write(_event, event("e3"))  # else on its own, in autocommit mode
    assert _events(wallet) == ["e1"]


_echo = Prepared(lambda: select(bindparam("v")))


@postgresql_only
def test_a_round_trip_that_could_not_be_sent_ends_the_transaction(wallet: Wallet) -> None:
    """A value psycopg cannot send fails its round trip before anything is written: the
    statements that waited for it (and BEGIN) are gone with it. Going on would commit what
    came after without them, outside any transaction: the transaction only rolls back."""
    with SqlUnitOfWork(wallet.engine) as uow:
        sql = uow._sql
        assert sql is not None
        sql.write(_event, event("e1"))
        with pytest.raises(psycopg.ProgrammingError):
            sql.one(_echo, {"v": object()})
        with pytest.raises(RuntimeError, match="transaction ended"):
            sql.write(_event, event("e2"))
        with pytest.raises(RuntimeError, match="transaction ended"):
            uow.commit()
    assert _events(wallet) == []


def test_no_statement_goes_out_after_the_commit(wallet: Wallet) -> None:
    """On both databases a statement after the commit would run on its own, outside any
    transaction: it is refused."""
    with SqlUnitOfWork(wallet.engine) as uow:
        sql = uow._sql
        assert sql is not None
        sql.write(_event, event("e1"))
        uow.commit()
        with pytest.raises(RuntimeError, match="transaction ended"):
            sql.write(_event, event("e2"))
        with pytest.raises(RuntimeError, match="transaction ended"):
            sql.one(_event_count, {})
        with pytest.raises(RuntimeError, match="transaction ended"):
            uow.commit()
    assert _events(wallet) == ["e1"]


@postgresql_only
def test_statements_dropped_behind_the_wires_back_cost_one_retry(wallet: Wallet) -> None:
    """DEALLOCATE ALL (or DISCARD ALL) on a writer's connection, by anyone: the next unit of
    work on it fails as a conflict, which the service facade runs again, and that try prepares
    its statements anew."""
    attempts = 0

    def attempt(name: str) -> None:
        nonlocal attempts
        attempts += 1
        with SqlUnitOfWork(wallet.engine) as uow:
            assert uow._sql is not None
            uow._sql.write(_event, event(name))
            uow._sql.one(_event_count, {})
            uow.commit()

    attempt("e1")
    pooled = wallet.engine.raw_connection()  # the pool's only one so far: the writer's
    try:
        driver = pooled.driver_connection
        assert driver is not None
        driver.execute("DEALLOCATE ALL")
        driver.commit()
    finally:
        pooled.close()
    attempts = 0
    retrying(lambda: attempt("e2"))
    assert attempts == 2
    assert _events(wallet) == ["e1", "e2"]


@postgresql_only
def test_an_update_that_matched_no_row_counts_zero(wallet: Wallet) -> None:
    """Now, later, and in a round trip with others: 0, not -1 nor another statement's count."""
    with kept_connection(wallet) as (driver, kept):
        for _ in range(2):  # prepared, then by name
            sql = SqlTransaction(driver, wallet.engine.dialect, write=True, kept=kept)
            try:
                sql.write(_event, event("e1"))
                missed = sql.count_later(_restamp, {"event_id": "nobody", "at": START})
                hit = sql.count_later(_restamp, {"event_id": "e1", "at": START})
                assert sql.count(_restamp, {"event_id": "nobody", "at": START}) == 0
                assert (missed(), hit()) == (0, 1)
            finally:
                sql.rollback()
                sql.close()


@postgresql_only
def test_a_backend_gone_away_is_an_outage_and_its_connection_is_dropped(wallet: Wallet) -> None:
    """A pooled writer's backend terminated (a server restart, an administrator) between two
    units of work: the next one fails as an outage, without hanging, and the one after it gets
    a working connection."""
    with SqlUnitOfWork(wallet.engine) as uow:
        assert uow._sql is not None
        uow._sql.write(_event, event("e1"))
        uow.commit()
        pid = uow._sql._driver.info.backend_pid
    url = wallet.engine.url
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as other:  # not one of the pool's: that one could be the very connection terminated
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    for attempt in range(wallet.engine.pool.size() + 2):  # type: ignore[attr-defined]
        try:
            with SqlUnitOfWork(wallet.engine) as uow:
                assert uow._sql is not None
                uow._sql.write(_event, event(f"e{attempt + 2}"))
                assert uow._sql.one(_event_count, {}) is not None
                uow.commit()
            break
        except StorageUnavailable:
            continue
    assert _events(wallet)[-1] == f"e{attempt + 2}"


_VALUES: list[Any] = [
    None,
    0,
    -(2**63),
    2**63 - 1,
    2**70,
    "100% sure, 5%s and %(x)s",
    "",
    "naïve ✓",
    b"\x00\xffbytes",
    True,
    Decimal("12345678901234567890.000000001"),
    1.5,
    date(2026, 2, 28),
    datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 2, 28, 23, 59, 59),
    timedelta(days=1, microseconds=1),
    Jsonb({"a": [1, None, "%s"], "b": "é"}),
    [1, 2, None],
]


@postgresql_only
@pytest.mark.parametrize("value", _VALUES, ids=repr)
def test_the_wire_sends_and_loads_values_as_psycopgs_cursors_do(wallet: Wallet, value: Any) -> None:
    with kept_connection(wallet) as (driver, _):
        wire = _Wire(driver)
        for sql in ("SELECT %(v)s", "SELECT %(v)s::text, pg_typeof(%(v)s)::text"):
            expected = driver.execute(sql, {"v": value}).fetchall()
            driver.rollback()
            result = wire.cursor()
            result.execute(sql, {"v": value})  # prepared
            assert result.fetchall() == expected
            result.execute(sql, {"v": value})  # by its name
            assert result.fetchall() == expected
            assert result.rowcount == 1
        result = wire.cursor()
        result.execute("SELECT '100%%' AS literal, %(v)s::text IS NULL", {"v": value})
        expected = driver.execute(
            "SELECT '100%%' AS literal, %(v)s::text IS NULL", {"v": value}
        ).fetchall()
        driver.rollback()
        assert result.fetchall() == expected
        if isinstance(value, Jsonb):
            assert json.loads(json.dumps(value.obj)) == value.obj


# Parameters that do not match their statement's placeholders: psycopg's cursors refuse them
# (TypeError, ProgrammingError) or, for a statement with none, ignore a mapping's values; a
# mapping given for positional placeholders must never have its keys sent as their values.
_SHAPES: list[tuple[str, Any]] = [
    ("SELECT %s::text, %s::text", {"a": 1, "b": 2}),  # the keys must not be sent as the values
    ("SELECT %s::text", {"a": 1}),
    ("SELECT %s::int", (1, 2)),
    ("SELECT 1", {"a": 1}),
    ("SELECT 1", {}),
    ("SELECT 1", ()),
    ("SELECT %(a)s::int", (1,)),
    ("SELECT %(a)s::int", (1, 2)),
    ("SELECT %(a)s::int", {"b": 1}),
    ("SELECT %(a)s::int", {"a": 1, "b": 2}),
    ("SELECT %s::int", 1),
]


@postgresql_only
@pytest.mark.parametrize(("sql", "params"), _SHAPES, ids=repr)
def test_the_wire_takes_or_refuses_parameters_as_psycopgs_cursors_do(
    wallet: Wallet, sql: str, params: Any
) -> None:
    with kept_connection(wallet) as (driver, _):
        try:
            expected: Any = driver.execute(sql, params).fetchall()
        except (TypeError, psycopg.Error) as exc:
            expected = type(exc)
        driver.rollback()
        result = _Wire(driver).cursor()
        try:
            result.execute(sql, params)
            answered: Any = result.fetchall()
        except (TypeError, psycopg.Error) as exc:
            answered = type(exc)
        assert answered == expected
