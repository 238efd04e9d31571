"""One database transaction on one driver connection, running prepared statements.

SQLite: `BEGIN IMMEDIATE` (writers) or `BEGIN` (readers) at once; each statement runs as it comes.
PostgreSQL (psycopg in autocommit mode, so the transaction says BEGIN itself): BEGIN waits to
travel with the first statement, writes whose results nobody reads wait for the next read or the
commit, and statements that go out together share one pipelined round trip. A write whose result
is read later (`count_later`), or a query whose rows are (`one_later`), waits the same way, on a
cursor of its own.

Consecutive queued INSERTs (plain ones: `prepared.InsertPart`) go out as one statement, the
earlier ones as data-modifying CTEs of the last (`WITH w0 AS (INSERT ...) INSERT ...`): for the
client, each statement costs about as much Python in psycopg as the server's work on a small
insert. Foreign keys between them hold (PostgreSQL checks them at the end of the statement). A
merge never crosses anything else that waits (a savepoint mark, a `count_later`, an UPDATE) and
never holds two inserts into one table, whose order between themselves the server would not keep.

On PostgreSQL a writing transaction's cursors are kept with the driver connection (`kept`: the
pool's dictionary for it, which the pool empties when it drops the connection) and serve its next
writing transactions: making one per statement read later costs more than the statement's
parameters. A reading transaction makes its own and closes them, since a psycopg cursor holds its
last rows on the client until it runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Dialect

from mwallet.core.db.prepared import InsertPart, Params, Prepared

_SAVEPOINT = "SAVEPOINT mwallet_mark"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT mwallet_mark"

# A statement waiting to go out: its SQL, its parameters, the cursor to run it on when its result
# is read later (else None: the transaction's own), and, for a plain INSERT, the same as a part
# of a merged statement.
_Waiting = tuple[str, Any, Any, InsertPart | None]
_KEPT_CURSORS = "mwallet_cursors"


class _Cursors:
    """The cursors of one PostgreSQL driver connection, for its transactions one after another:
    the transaction's own, those of `one_each` and those of statements read later."""

    __slots__ = ("driver", "later", "main", "side")

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.main = driver.cursor()
        self.side: list[Any] = []
        self.later: list[Any] = []


class SqlTransaction:
    """One transaction on one driver connection; see the module docstring."""

    def __init__(
        self, driver: Any, dialect: Dialect, *, write: bool, kept: dict[Any, Any] | None = None
    ) -> None:
        self._driver = driver
        self._dialect = dialect
        self._pipelined = dialect.name == "postgresql"
        self.dialect_name = dialect.name
        # Kept for writers only, whose results are a few rows: a reader's (a statement's batch, a
        # report) would hold its rows until the connection's next transaction. SQLite's are not
        # kept either: see `close`.
        store = kept if self._pipelined and write else None
        cursors = store.get(_KEPT_CURSORS) if store is not None else None
        if cursors is None or cursors.driver is not driver:
            cursors = _Cursors(driver)
            if store is not None:
                store[_KEPT_CURSORS] = cursors
        self._kept = store is not None
        self._cursor = cursors.main
        self._side_cursors = cursors.side  # for pipelined statements read side by side
        self._later_cursors = cursors.later  # one per statement read later, in this transaction
        self._later_used = 0
        self._pending: list[_Waiting] = []  # statements waiting to go out, in order
        self.open = True
        self._closed = False  # `close`d: the connection has gone back to its pool
        if self._pipelined:
            driver.autocommit = True
            self._pending.append(
                ("BEGIN", None, None, None)
                if write
                else ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", None, None, None)
            )
            self._begun = False  # nothing has reached the server yet
        else:
            self._cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._begun = True

    def one(self, prepared: Prepared, params: Params) -> tuple[Any, ...] | None:
        """The first row of a query (or of an UPDATE ... RETURNING), or None."""
        compiled = prepared.compiled(self._dialect)
        self._send(compiled.sql, compiled.parameters(params))
        raw = self._cursor.fetchone()
        return None if raw is None else compiled.row(raw)

    def all(self, prepared: Prepared, params: Params) -> list[tuple[Any, ...]]:
        compiled = prepared.compiled(self._dialect)
        self._send(compiled.sql, compiled.parameters(params))
        if compiled.results is None:  # nothing to convert: the driver's own tuples
            rows: list[tuple[Any, ...]] = self._cursor.fetchall()
            return rows
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def one_each(self, prepared: Prepared, many: Sequence[Params]) -> list[tuple[Any, ...] | None]:
        """Run one statement per parameter set, in order, in a single round trip where possible."""
        compiled = prepared.compiled(self._dialect)
        if not self._pipelined:
            return [self.one(prepared, params) for params in many]
        while len(self._side_cursors) < len(many):
            self._side_cursors.append(self._driver.cursor())
        cursors = self._side_cursors[: len(many)]
        with self._driver.pipeline():
            self._drain()
            for cursor, params in zip(cursors, many, strict=True):
                cursor.execute(compiled.sql, compiled.parameters(params))
        rows = []
        for cursor in cursors:
            raw = cursor.fetchone()
            rows.append(None if raw is None else compiled.row(raw))
        return rows

    def count(self, prepared: Prepared, params: Params) -> int:
        """Run a statement and say how many rows it changed."""
        compiled = prepared.compiled(self._dialect)
        self._send(compiled.sql, compiled.parameters(params))
        return int(self._cursor.rowcount)

    def write(self, prepared: Prepared, params: Params) -> None:
        """A statement whose result is not read: it may wait for the next read or the commit."""
        compiled = prepared.compiled(self._dialect)
        if self._pipelined:
            self._pending.append(
                (compiled.sql, compiled.parameters(params), None, compiled.insert_part)
            )
        else:
            self._cursor.execute(compiled.sql, compiled.parameters(params))

    def count_later(self, prepared: Prepared, params: Params) -> Callable[[], int]:
        """A statement whose changed-row count is read later: on PostgreSQL it goes out with the
        next round trip (the returned function sends it then if nothing else has)."""
        compiled = prepared.compiled(self._dialect)
        if not self._pipelined:
            self._cursor.execute(compiled.sql, compiled.parameters(params))
            count = int(self._cursor.rowcount)
            return lambda: count
        cursor = self._later(compiled.sql, compiled.parameters(params))

        @cache  # read once: the cursor serves other statements after this transaction
        def changed() -> int:
            return int(cursor().rowcount)

        return changed

    def one_later(self, prepared: Prepared, params: Params) -> Callable[[], tuple[Any, ...] | None]:
        """`one`, read later: on PostgreSQL the query goes out with the next round trip (the
        returned function sends it then if nothing else has)."""
        compiled = prepared.compiled(self._dialect)
        if not self._pipelined:
            row = self.one(prepared, params)
            return lambda: row
        cursor = self._later(compiled.sql, compiled.parameters(params))

        @cache  # the row is read off the cursor once; asked again, the same answer
        def first_row() -> tuple[Any, ...] | None:
            raw = cursor().fetchone()
            return None if raw is None else compiled.row(raw)

        return first_row

    def _later(self, sql: str, params: Any) -> Callable[[], Any]:
        """Queue a statement on a cursor of its own; the returned function gives that cursor,
        once the statement has gone out (sending it then if nothing else has)."""
        if self._later_used == len(self._later_cursors):
            self._later_cursors.append(self._driver.cursor())
        cursor = self._later_cursors[self._later_used]
        self._later_used += 1
        sent = (sql, params, cursor, None)
        self._pending.append(sent)

        def sent_cursor() -> Any:
            if self._closed:  # its cursor may hold another transaction's result by now
                raise RuntimeError("a result read later was asked for after its connection")
            if any(waiting is sent for waiting in self._pending):
                self._flush()
            return cursor

        return sent_cursor

    def savepoint(self) -> None:
        """Mark a point to go back to (PostgreSQL: the mark travels with the next round trip)."""
        if self._pipelined:
            self._pending.append((_SAVEPOINT, None, None, None))
        else:
            self._cursor.execute(_SAVEPOINT)

    def rollback_to_savepoint(self) -> None:
        """Undo everything since the latest `savepoint` (as both databases do with one name set
        twice). Statements still waiting to go out after the mark are dropped unsent (if the mark
        itself never went out, nothing after it did either), but for those up to the last one
        whose result is read later."""
        if not self._pipelined:
            self._cursor.execute(_ROLLBACK_TO_SAVEPOINT)
            return
        pending = self._pending
        marks = [index for index, (sql, *_) in enumerate(pending) if sql is _SAVEPOINT]
        mark = marks[-1] if marks else -1  # -1: the mark went out, all that waits came after it
        # A statement read later (`count_later`, `one_later`) queued after the mark still goes
        # out, with what came before it, ahead of the rollback: asked afterwards, it answers as
        # on SQLite, where it ran at once, not from a cursor that never ran.
        read_later = [
            index for index in range(mark + 1, len(pending)) if pending[index][2] is not None
        ]
        if read_later:
            self._pending = pending[: read_later[-1] + 1]
            self._flush()
        elif marks:
            del pending[mark:]  # nothing after the mark went out, and none of it will
            return
        self._pending = [(_ROLLBACK_TO_SAVEPOINT, None, None, None)]

    def commit(self) -> None:
        if self._pipelined:
            if self._begun or len(self._pending) > 1:
                self._pending.append(("COMMIT", None, None, None))
                self._flush()
            self._pending.clear()
        else:
            self._driver.commit()
        self.open = False

    def rollback(self) -> None:
        """End the transaction without keeping anything; queued writes are dropped unsent."""
        if not self.open:
            return
        self.open = False
        self._pending.clear()
        if not self._pipelined:
            self._driver.rollback()
        elif self._driver.info.transaction_status.name != "IDLE":
            # Asked of the connection, not of our own bookkeeping: whatever reached the server
            # before a failure, the connection goes back to the pool outside any transaction.
            self._cursor.execute("ROLLBACK")

    def close(self) -> None:
        """Give the connection back as the pool's other users expect it. Kept cursors stay open;
        SQLite's are closed, since one left part-way through a query would hold its statement,
        and the read snapshot with it, open."""
        self._closed = True
        try:
            if not self._kept:
                for cursor in (*self._side_cursors, *self._later_cursors):
                    cursor.close()
                self._cursor.close()
        finally:
            if self._pipelined and not self._driver.closed:
                self._driver.autocommit = False  # as the pool's other users expect

    def _send(self, sql: str, params: Any) -> None:
        if self._pending:
            with self._driver.pipeline():
                self._drain()
                self._cursor.execute(sql, params)
        else:
            self._cursor.execute(sql, params)

    def _flush(self) -> None:
        with self._driver.pipeline():
            self._drain()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        inserts: list[tuple[str, Any, InsertPart]] = []  # consecutive plain inserts, one a table
        for sql, params, cursor, part in pending:
            if part is None:
                self._insert(inserts)
                (cursor or self._cursor).execute(sql, params)
                continue
            if any(part.table == other.table for _, _, other in inserts):
                self._insert(inserts)
            inserts.append((sql, params, part))
        self._insert(inserts)
        self._begun = True

    def _insert(self, inserts: list[tuple[str, Any, InsertPart]]) -> None:
        """Send consecutive plain inserts (one statement for several) and forget them."""
        if len(inserts) == 1:
            sql, params, _ = inserts[0]
            self._cursor.execute(sql, params)
        elif inserts:
            self._cursor.execute(
                _merged(tuple(part.sql for _, _, part in inserts)),
                tuple(chain.from_iterable(part.pick(params) for _, params, part in inserts)),
            )
        inserts.clear()


@lru_cache(maxsize=64)
def _merged(inserts: tuple[str, ...]) -> str:
    """One statement of plain inserts (positional placeholders, so they keep their order)."""
    *first, last = inserts
    ctes = ", ".join(f"w{number} AS ({sql})" for number, sql in enumerate(first))
    return f"WITH {ctes} {last}"
