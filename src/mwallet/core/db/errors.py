"""Database errors in the wallet's own words: which are races, which are outages, which are bugs.

A race (deadlock, serialization failure, a unique key a concurrent transaction just took) becomes
`ConcurrencyConflict`, and the service facade runs the unit of work again; so does a prepared
statement dropped behind the connection's back, which the next try prepares again. An unreachable or
unopenable database becomes `StorageUnavailable`. Anything else is left as it is: a bug.
"""

from __future__ import annotations

from mwallet.core.errors import (
    ConcurrencyConflict,
    DatabaseBusy,
    LedgerInvariantBroken,
    StorageUnavailable,
)

# PostgreSQL SQLSTATEs that a retry of the whole transaction can cure: serialization failure,
# deadlock, unique violation (only a concurrent writer can cause one: every use case reads
# before it inserts), lock not available.
_PG_RACES = {"40001", "40P01", "23505", "55P03"}
# A prepared statement the server no longer has (dropped behind the connection's back: DISCARD
# ALL, DEALLOCATE ALL): the writers' wire prepares it again on the next try.
_PG_STATEMENT_DROPPED = "26000"
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
    if sqlstate in _PG_RACES:
        return ConcurrencyConflict(f"a concurrent change got there first ({sqlstate})")
    if sqlstate == _PG_STATEMENT_DROPPED:
        return ConcurrencyConflict(f"a prepared statement was dropped: {first_line}")
    if sqlstate == "23514":
        return LedgerInvariantBroken(f"a database check refused the change: {first_line}")
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
