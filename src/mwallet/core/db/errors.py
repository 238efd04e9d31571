"""Database errors in the wallet's own words: which are races, which are outages, which are bugs.

A race (deadlock, serialization failure, a unique key a concurrent transaction just took) becomes
`ConcurrencyConflict`, and the service facade runs the unit of work again; so does a prepared
statement dropped behind the connection's back, which the next try prepares again. A lock held
past the wait for it (SQLite's busy timeout, PostgreSQL's `lock_timeout`) becomes `DatabaseBusy`.
An unreachable or unopenable database becomes `StorageUnavailable`. Anything else is left as it
is: a bug.
"""

from __future__ import annotations

from mwallet.core.errors import (
    ConcurrencyConflict,
    DatabaseBusy,
    LedgerInvariantBroken,
    StorageUnavailable,
    WalletError,
)

_RACE = "a concurrent change got there first ({sqlstate})"
# PostgreSQL SQLSTATEs in the wallet's words: the error, and its message ({sqlstate}, {line}: the
# driver's first line).
_PG_ERRORS: dict[str, tuple[type[WalletError], str]] = {
    # Races a retry of the whole transaction can cure: serialization failure, deadlock, unique
    # violation (only a concurrent writer can cause one: every use case reads before it inserts).
    "40001": (ConcurrencyConflict, _RACE),
    "40P01": (ConcurrencyConflict, _RACE),
    "23505": (ConcurrencyConflict, _RACE),
    # A prepared statement the server no longer has (dropped behind the connection's back:
    # DISCARD ALL, DEALLOCATE ALL): the writers' wire prepares it again on the next try.
    "26000": (ConcurrencyConflict, "a prepared statement was dropped: {line}"),
    # Lock not available: a row stayed locked past the session's `lock_timeout` (engine.py), as
    # SQLite's busy timeout; trying again at once would wait as long again.
    "55P03": (DatabaseBusy, "a row stayed locked by another writer; try again"),
    # The server ended a session left idle inside its transaction past its
    # `idle_in_transaction_session_timeout` (engine.py): its connection is gone.
    "25P03": (
        StorageUnavailable,
        "the database ended the session: it sat idle inside a transaction too long",
    ),
    "23514": (LedgerInvariantBroken, "a database check refused the change: {line}"),
}
# SQLSTATE classes of a server that cannot be used: connection exception, insufficient
# resources, operator intervention, invalid authorization, invalid catalog (no such database).
_PG_OUTAGE_CLASSES = ("08", "53", "57", "28", "3D")
_SQLITE_OUTAGES = ("unable to open", "disk i/o error", "readonly database", "disk is full")


def translate(exc: Exception) -> Exception:
    """The wallet's error for a driver error (raw, or wrapped by SQLAlchemy), or `exc` itself."""
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if type(original).__module__.startswith("psycopg"):
        translated = _postgresql(original, first_line)
    else:
        translated = _sqlite(first_line)
    return translated or exc


def _postgresql(error: BaseException, first_line: str) -> Exception | None:
    sqlstate = getattr(error, "sqlstate", None) or ""
    if (known := _PG_ERRORS.get(sqlstate)) is not None:
        kind, message = known
        return kind(message.format(sqlstate=sqlstate, line=first_line))
    # No SQLSTATE at all: the connection itself failed (refused, reset, timed out).
    if sqlstate.startswith(_PG_OUTAGE_CLASSES) or not sqlstate:
        return StorageUnavailable(f"the database cannot be used: {first_line}")
    return None


def _sqlite(first_line: str) -> Exception | None:
    message = first_line.lower()
    if "database is locked" in message or "database is busy" in message:
        return DatabaseBusy("the database stayed locked by another writer; try again")
    if any(outage in message for outage in _SQLITE_OUTAGES):
        return StorageUnavailable(f"the database cannot be used: {first_line}")
    if "check constraint failed" in message:
        return LedgerInvariantBroken(f"a database check refused the change: {first_line}")
    return None
