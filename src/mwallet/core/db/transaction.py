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

A writing transaction on PostgreSQL sends its statements through `_Wire`, on libpq directly: a
round trip's statements leave in one write, each as a prepared statement (prepared in the same
round trip the first time the connection sees it). psycopg's pipeline writes and polls once per
statement: the server's backend woke for each (~8 times a transfer instead of ~6), and psycopg's
Python per statement was ~half of a transfer's client CPU. Readers keep psycopg's own cursors.

On PostgreSQL a writing transaction's cursors are kept with the driver connection (`kept`: the
pool's dictionary for it, which the pool empties when it drops the connection) and serve its next
writing transactions: making one per statement read later costs more than the statement's
parameters. A reading transaction makes its own and closes them, since a psycopg cursor holds its
last rows on the client until it runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain, count
from types import TracebackType
from typing import Any

from sqlalchemy import Dialect

from mwallet.core.db.prepared import InsertPart, Params, Prepared, picker

_SAVEPOINT = "SAVEPOINT mwallet_mark"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT mwallet_mark"

# A statement waiting to go out: its SQL, its parameters, the cursor to run it on when its result
# is read later (else None: the transaction's own), and, for a plain INSERT, the same as a part
# of a merged statement.
_Waiting = tuple[str, Any, Any, InsertPart | None]
_KEPT_CURSORS = "mwallet_cursors"
# Names of prepared statements, never used twice in a process (one dropped after an error may
# still exist on its connection).
_statement_numbers = count()


class _Cursors:
    """The cursors of one PostgreSQL driver connection, for its transactions one after another:
    the transaction's own, those of `one_each` and those of statements read later; and what
    sends them (`sender`: the driver, or for writers the `_Wire` on it)."""

    __slots__ = ("driver", "later", "main", "sender", "side")

    def __init__(self, driver: Any, sender: Any) -> None:
        self.driver = driver
        self.sender = sender
        self.main = sender.cursor()
        self.side: list[Any] = []
        self.later: list[Any] = []


class _Result:
    """What a statement sent through `_Wire` answered: the cursor methods SqlTransaction reads.

    Until its round trip has answered it, and if the statement failed or never ran (an earlier
    one of its round trip failed), reading it raises (`_failed`: the round trip's error, or why
    it has no answer) rather than give what it held from an earlier statement."""

    __slots__ = ("_failed", "_next", "_rowcount", "_rows", "_status", "_wire")

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire
        self._rows: list[tuple[Any, ...]] = []
        self._next = 0
        self._rowcount = -1
        self._status: bytes | None = None  # the command's tag (b"UPDATE 1", b"COMMIT")
        self._failed: BaseException | str | None = None

    def execute(self, sql: str, params: Any = None) -> None:
        self._failed = "its round trip did not complete"
        self._wire.execute(self, sql, params)

    @property
    def rowcount(self) -> int:
        if self._failed is not None:
            self._raise_failed()
        return self._rowcount

    @property
    def statusmessage(self) -> str | None:
        if self._failed is not None:
            self._raise_failed()
        return None if self._status is None else self._status.decode()

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._failed is not None:
            self._raise_failed()
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._failed is not None:
            self._raise_failed()
        rows = self._rows[self._next :] if self._next else self._rows
        self._next = len(self._rows)
        return rows

    def close(self) -> None:
        self._rows = []

    def _raise_failed(self) -> None:
        failed = self._failed
        if isinstance(failed, BaseException):
            raise failed
        raise self._wire.interface_error(f"no result: {failed}")


# A statement as the wire sends it: its Postgres form, its adapted parameters, their types and
# formats (what psycopg's `PostgresQuery` holds; a plain tuple, made for every statement).
_Query = tuple[bytes, Sequence[Any] | None, tuple[int, ...], Sequence[Any] | None]
# What the wire keeps of a statement's SQL text (`_Wire._query`).
_Converted = tuple[bytes, list[Any], Callable[[Any], Sequence[Any]] | None, int]


class _Wire:
    """A psycopg connection's statements sent on its libpq connection a round trip at a time.

    Inside `pipeline()` statements are queued; leaving it writes them all, with a Sync, in one
    flush, and reads every answer into its `_Result`. Outside, a statement is a round trip of its
    own. Each statement is prepared, by name, the first time this connection sends it (up to
    `MAX_PREPARED`; then sent unnamed), in the same round trip. Values are adapted and rows loaded
    by psycopg's own Transformer, so they are what psycopg's cursors give. The first error raises
    as psycopg raises it, once the round trip is over (the statements after it were not run, and
    their results raise it too if read). A round trip broken off before its Sync was read (an
    interrupt, a lost connection) closes the connection: answers may be left unread on it.
    """

    MAX_PREPARED = 256

    def __init__(self, driver: Any) -> None:
        from psycopg import errors, pq
        from psycopg._queries import PostgresQuery, _query2pg_nocache
        from psycopg.adapt import Transformer
        from psycopg.generators import fetch_many, send

        # What the wire uses of psycopg beyond its public API, checked before anything changes:
        # missing, `_sender_for` falls back to psycopg's own pipeline.
        for owner, name in (
            (Transformer, "dump_sequence"),
            (PostgresQuery, "is_params_sequence"),
            (errors, "error_from_result"),
            (driver, "wait"),
            (driver, "lock"),
            (driver.pgconn, "_encoding"),
        ):
            getattr(owner, name)
        self._driver = driver
        self._pgconn = driver.pgconn
        # psycopg keeps preparing the readers' statements on this connection (a statement's
        # batches, history pages: turned off, a 200,000-movement history's pages took twice as
        # long). It sends DEALLOCATE ALL, which drops this wire's statements too, when one of its
        # cursors runs a ROLLBACK, a DROP or an ALTER: readers end with COMMIT when they can
        # (`SqlTransaction.rollback`), and a statement dropped all the same costs its unit of
        # work one retry (26000, `errors.translate`).
        self._transformer = Transformer(driver)
        self._to_postgres = _query2pg_nocache
        self._is_sequence = PostgresQuery.is_params_sequence
        # SQL text -> its Postgres form ($1 placeholders, encoded), the placeholders' formats,
        # the parameter names in $n order (None: positional) and how many; made once per
        # statement (psycopg makes a query object and encodes and looks the SQL up each time,
        # ~1/6 of a transfer's client Python), for the statements this connection sends most.
        self._converted: dict[str, _Converted] = {}
        self._errors = errors
        self._fetch_many, self._send = fetch_many, send
        self._tuples_ok = pq.ExecStatus.TUPLES_OK
        self._command_ok = pq.ExecStatus.COMMAND_OK
        self._sync = pq.ExecStatus.PIPELINE_SYNC
        self._stale_statement = (errors.InvalidSqlStatementName, errors.FeatureNotSupported)
        self._fatal = pq.ExecStatus.FATAL_ERROR
        self._aborted = pq.ExecStatus.PIPELINE_ABORTED
        self._operational_error = errors.OperationalError
        self.interface_error = errors.InterfaceError
        self._names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._queued: list[tuple[_Result, str, Any]] | None = None
        self._depth = 0  # `with pipeline()` blocks open

    def cursor(self) -> _Result:
        return _Result(self)

    def pipeline(self) -> _Wire:
        """Queue the statements of a `with` block, and send them as one round trip when it
        ends (without an error; nested, when the outermost ends). The wire is its own context
        manager: a transfer opens four, and a generator-made one cost ~2 us each."""
        return self

    def __enter__(self) -> None:
        if self._depth == 0:
            self._queued = []
        self._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth:  # nested: the outer one sends
            return
        queued, self._queued = self._queued, None
        if exc_type is None and queued:
            self._round_trip(queued)

    def execute(self, result: _Result, sql: str, params: Any) -> None:
        if self._queued is not None:
            self._queued.append((result, sql, params))
        else:
            self._round_trip([(result, sql, params)])

    def _round_trip(self, statements: list[tuple[_Result, str, Any]]) -> None:
        if self._driver.closed:  # as psycopg's cursors say it
            raise self._operational_error("the connection is closed")
        pgconn, names = self._pgconn, self._names
        # Adapt everything first: a value that cannot be sent fails before anything is.
        # (name or None: unnamed, the statement, whose answer it is: a _Result, or for a PREPARE
        # what names it, cached only once the server has prepared it)
        sends: list[tuple[bytes | None, _Query, Any]] = []
        naming: dict[tuple[bytes, tuple[int, ...]], bytes] = {}  # named in this round trip
        for result, sql, params in statements:
            statement = self._query(sql, params)
            key = (statement[0], statement[2])
            name = names.get(key) or naming.get(key)
            if name is None and len(names) + len(naming) < self.MAX_PREPARED:
                name = naming[key] = b"mwallet_%d" % next(_statement_numbers)
                sends.append((name, statement, (key, name)))  # PREPARE, then run it
            sends.append((name, statement, result))
        with self._driver.lock:
            try:
                pgconn.enter_pipeline_mode()
                for name, (query, values, types, formats), answer in sends:
                    if type(answer) is tuple:
                        pgconn.send_prepare(name, query, param_types=types)
                    elif name is None:
                        pgconn.send_query_params(
                            query, values, param_types=types, param_formats=formats
                        )
                    else:
                        pgconn.send_query_prepared(name, values, param_formats=formats)
                pgconn.pipeline_sync()
                self._driver.wait(self._send(pgconn))
                error = self._read([answer for _, _, answer in sends])
                pgconn.exit_pipeline_mode()
            except BaseException:
                # Whatever broke off the round trip (the connection, an interrupt, a row that
                # would not load), answers may be left unread on the connection, in pipeline
                # mode: the next statement would be handed them. Closed, the connection serves
                # no one again, and the unit of work has the pool drop it (its rollback fails).
                self._driver.close()
                raise
        if error is not None:
            if isinstance(error, self._stale_statement):
                # Dropped behind our back (DISCARD ALL), or, its result's type changed by a
                # migration, refused ("cached plan must not change result type"): each is
                # prepared again, under a new name, by the next round trip that sends it.
                names.clear()
            raise error

    def _query(self, sql: str, params: Any) -> _Query:
        """The statement in Postgres' form with its parameters adapted by psycopg's Transformer,
        as psycopg's `PostgresQuery.convert` makes it."""
        if params is None:  # sent as it is, as psycopg sends a query without parameters
            return (sql.encode(self._transformer.encoding), None, (), None)
        converted = self._converted.get(sql)
        if converted is None:
            converted = self._convert(sql)
        query, formats, pick, placeholders = converted
        # A mapping or a sequence, told apart as psycopg does (a dict at once): a mapping given
        # for positional placeholders would otherwise be sent as its keys.
        kind = type(params)
        mapping = kind is dict or (
            kind is not tuple and kind is not list and not self._is_sequence(params)
        )
        if mapping:
            if pick is not None:  # named placeholders: the mapping's values in $n order
                try:
                    params = pick(params)
                except KeyError as missing:
                    raise self._errors.ProgrammingError(
                        f"query parameter missing: {missing.args[0]}"
                    ) from None
            elif placeholders:
                raise TypeError("positional placeholders (%s) require a sequence of parameters")
            else:  # no placeholders: the mapping's values are not used
                params = ()
        elif len(params) != placeholders:
            raise self._errors.ProgrammingError(
                f"the query has {placeholders} placeholders but {len(params)} parameters"
            )
        elif pick is not None:
            raise TypeError("named placeholders require a mapping of parameters")
        transformer = self._transformer
        dumped = transformer.dump_sequence(params, formats)
        return (query, dumped, transformer.types or (), transformer.formats)

    def _convert(self, sql: str) -> _Converted:
        encoding = self._transformer.encoding
        query, formats, order, parts = self._to_postgres(sql.encode(encoding), encoding)
        pick = None if order is None else picker(tuple(order))
        converted = (query, formats, pick, len(parts) - 1)
        if len(self._converted) < self.MAX_PREPARED:
            self._converted[sql] = converted
        return converted

    def _read(self, expected: list[Any]) -> BaseException | None:
        """Read every answer up to the Sync into its `_Result` (caching the name of each
        statement prepared); the first error, or None."""
        errors = self._errors
        pgconn, transformer, names = self._pgconn, self._transformer, self._names
        answers = iter(expected)
        error = None
        while True:
            results = self._driver.wait(self._fetch_many(pgconn))
            if not results:
                continue
            result = results[0]
            status = result.status
            if status == self._sync:
                return error
            answer = next(answers)
            if type(answer) is tuple:  # a PREPARE
                if status == self._command_ok:
                    key, name = answer
                    names[key] = name
                elif error is None:
                    error = self._error(errors, result)
                continue
            answer._next = 0
            answer._rows = []
            answer._status = result.command_status
            if status == self._tuples_ok:
                transformer.set_pgresult(result)
                answer._rowcount = result.ntuples
                try:
                    answer._rows = transformer.load_rows(0, result.ntuples, tuple)
                except Exception as exc:  # noqa: BLE001 - raised when read, as by psycopg's
                    # cursors (which load rows as they are fetched): the statement ran, and so
                    # did the rest of the round trip (a COMMIT in it committed).
                    answer._failed = exc
                else:
                    answer._failed = None
            elif status == self._command_ok:
                tuples = result.command_tuples
                answer._rowcount = -1 if tuples is None else tuples
                answer._failed = None
            else:  # failed, or not run after an earlier failure: the round trip's error
                if error is None:
                    error = self._error(errors, result)
                answer._failed = error

    def _error(self, errors: Any, result: Any) -> BaseException:
        error: BaseException
        if result.status == self._fatal:
            error = errors.error_from_result(result, encoding=self._pgconn._encoding)
        elif result.status == self._aborted:
            error = errors.PipelineAborted("pipeline aborted")
        else:
            error = errors.InternalError(f"unexpected result status {result.status!r}")
        return error


def for_the_pool(driver: Any, dialect: Dialect) -> None:
    """Leave the driver connection as the pool's other users expect it (psycopg: not in
    autocommit mode, which `SqlTransaction` turns on); before it goes back to the pool."""
    if dialect.name == "postgresql" and not driver.closed and driver.autocommit:
        driver.autocommit = False


def _sender_for(driver: Any) -> Any:
    """A `_Wire` on the driver connection, or, should this psycopg not have the parts of its
    own that the wire builds on (not its public API: pyproject pins the minor versions it was
    tested with), the driver itself: its own pipeline, slower but just as correct."""
    try:
        return _Wire(driver)
    except (ImportError, AttributeError):
        return driver


class _Answer:
    """A result read later that is known already (SQLite ran the statement at once)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __call__(self) -> Any:
        return self._value


class _RowCount:
    """The changed-row count of a statement read later, read off its cursor once (the cursor
    serves other statements after this transaction)."""

    __slots__ = ("_count", "_cursor")

    def __init__(self, cursor: Callable[[], Any]) -> None:
        self._cursor: Callable[[], Any] | None = cursor
        self._count = 0

    def __call__(self) -> int:
        if self._cursor is not None:
            self._count = int(self._cursor().rowcount)
            self._cursor = None
        return self._count


class _FirstRow:
    """The first row of a query read later, read off its cursor once; asked again, the same
    answer."""

    __slots__ = ("_cursor", "_row", "_to_row")

    def __init__(
        self, cursor: Callable[[], Any], to_row: Callable[[Sequence[Any]], tuple[Any, ...]]
    ) -> None:
        self._cursor: Callable[[], Any] | None = cursor
        self._to_row = to_row
        self._row: tuple[Any, ...] | None = None

    def __call__(self) -> tuple[Any, ...] | None:
        if self._cursor is not None:
            raw = self._cursor().fetchone()
            self._row = None if raw is None else self._to_row(raw)
            self._cursor = None
        return self._row


# SQLite's transactions have none (statements read later or side by side are PostgreSQL's):
# one empty list they share, never added to.
_NO_CURSORS: list[Any] = []


class SqlTransaction:
    """One transaction on one driver connection; see the module docstring."""

    def __init__(
        self, driver: Any, dialect: Dialect, *, write: bool, kept: dict[Any, Any] | None = None
    ) -> None:
        self._driver = driver
        self._dialect = dialect
        self._pipelined = dialect.name == "postgresql"
        self._write = write
        self.dialect_name = dialect.name
        # Kept for writers only, whose results are a few rows: a reader's (a statement's batch, a
        # report) would hold its rows until the connection's next transaction. SQLite's are not
        # kept either: see `close`.
        store = kept if self._pipelined and write else None
        self._kept = store is not None
        self._sender: Any = driver  # makes cursors and pipelines: the driver, or its _Wire
        # For pipelined statements read side by side, and one per statement read later.
        self._side_cursors: list[Any] = _NO_CURSORS
        self._later_cursors: list[Any] = _NO_CURSORS
        if not self._pipelined:  # SQLite: one cursor, its own, closed with it (`close`)
            self._cursor = driver.cursor()
        else:
            cursors = store.get(_KEPT_CURSORS) if store is not None else None
            if cursors is None or cursors.driver is not driver:
                # Only with a store: a _Wire prepares statements once for its connection's life.
                cursors = _Cursors(driver, _sender_for(driver) if store is not None else driver)
                if store is not None:
                    store[_KEPT_CURSORS] = cursors
            self._sender = cursors.sender
            self._cursor = cursors.main
            self._side_cursors = cursors.side
            self._later_cursors = cursors.later
        self._later_used = 0
        self._pending: list[_Waiting] = []  # statements waiting to go out, in order
        self.open = True  # statements may still be sent: neither committed nor rolled back
        self._committed = self._rolled_back = False
        self._closed = False  # `close`d: the connection has gone back to its pool
        if self._pipelined:
            if not driver.autocommit:  # left on between units of work (`close`)
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

    # Each statement below finds its compiled form with a dictionary look-up (`Prepared.compiled`
    # only the first time), checks the transaction is open and, with nothing queued (SQLite
    # always), runs it on the cursor itself: a transfer runs eleven, and each call saved on the
    # way is ~1% of its Python.

    def one(self, prepared: Prepared, params: Params) -> tuple[Any, ...] | None:
        """The first row of a query (or of an UPDATE ... RETURNING), or None."""
        if not self.open:
            self._check_open()
        compiled = prepared.by_dialect.get(self.dialect_name) or prepared.compiled(self._dialect)
        if self._pending:
            self._send(compiled.sql, compiled.parameters(params))
        else:
            self._cursor.execute(compiled.sql, compiled.parameters(params))
        raw = self._cursor.fetchone()
        return None if raw is None else compiled.row(raw)

    def all(self, prepared: Prepared, params: Params) -> list[tuple[Any, ...]]:
        self._check_open()
        compiled = prepared.compiled(self._dialect)
        self._send(compiled.sql, compiled.parameters(params))
        if compiled.results is None:  # nothing to convert: the driver's own tuples
            rows: list[tuple[Any, ...]] = self._cursor.fetchall()
            return rows
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def one_each(self, prepared: Prepared, many: Sequence[Params]) -> list[tuple[Any, ...] | None]:
        """Run one statement per parameter set, in order, in a single round trip where possible."""
        if not self._pipelined:
            return [self.one(prepared, params) for params in many]
        self._check_open()
        compiled = prepared.compiled(self._dialect)
        while len(self._side_cursors) < len(many):
            self._side_cursors.append(self._sender.cursor())
        cursors = self._side_cursors[: len(many)]
        try:
            with self._sender.pipeline():
                self._drain()
                for cursor, params in zip(cursors, many, strict=True):
                    cursor.execute(compiled.sql, compiled.parameters(params))
        except BaseException as exc:
            self._failed_round_trip(exc)
            raise
        rows = []
        for cursor in cursors:
            raw = cursor.fetchone()
            rows.append(None if raw is None else compiled.row(raw))
        return rows

    def count(self, prepared: Prepared, params: Params) -> int:
        """Run a statement and say how many rows it changed."""
        self._check_open()
        compiled = prepared.compiled(self._dialect)
        self._send(compiled.sql, compiled.parameters(params))
        return int(self._cursor.rowcount)

    def write(self, prepared: Prepared, params: Params) -> None:
        """A statement whose result is not read: it may wait for the next read or the commit."""
        if not self.open:
            self._check_open()
        compiled = prepared.by_dialect.get(self.dialect_name) or prepared.compiled(self._dialect)
        if self._pipelined:
            self._pending.append(
                (compiled.sql, compiled.parameters(params), None, compiled.insert_part)
            )
        else:
            self._cursor.execute(compiled.sql, compiled.parameters(params))

    def count_later(self, prepared: Prepared, params: Params) -> Callable[[], int]:
        """A statement whose changed-row count is read later: on PostgreSQL it goes out with the
        next round trip (the returned function sends it then if nothing else has)."""
        if not self.open:
            self._check_open()
        compiled = prepared.by_dialect.get(self.dialect_name) or prepared.compiled(self._dialect)
        if not self._pipelined:
            self._cursor.execute(compiled.sql, compiled.parameters(params))
            return _Answer(int(self._cursor.rowcount))
        return _RowCount(self._later(compiled.sql, compiled.parameters(params)))

    def one_later(self, prepared: Prepared, params: Params) -> Callable[[], tuple[Any, ...] | None]:
        """`one`, read later: on PostgreSQL the query goes out with the next round trip (the
        returned function sends it then if nothing else has)."""
        if not self._pipelined:
            return _Answer(self.one(prepared, params))
        if not self.open:
            self._check_open()
        compiled = prepared.by_dialect.get(self.dialect_name) or prepared.compiled(self._dialect)
        return _FirstRow(self._later(compiled.sql, compiled.parameters(params)), compiled.row)

    def _later(self, sql: str, params: Any) -> Callable[[], Any]:
        """Queue a statement on a cursor of its own; the returned function gives that cursor,
        once the statement has gone out (sending it then if nothing else has)."""
        if self._later_used == len(self._later_cursors):
            self._later_cursors.append(self._sender.cursor())
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
        self._check_open()
        if self._pipelined:
            self._pending.append((_SAVEPOINT, None, None, None))
        else:
            self._cursor.execute(_SAVEPOINT)

    def rollback_to_savepoint(self) -> None:
        """Undo everything since the latest `savepoint` (as both databases do with one name set
        twice). Statements still waiting to go out after the mark are dropped unsent (if the mark
        itself never went out, nothing after it did either), but for those up to the last one
        whose result is read later."""
        self._check_open()
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
        self._check_open()
        # Whatever happens now, nothing more goes out in this transaction: on PostgreSQL (in
        # autocommit mode) a statement after a COMMIT, even a failed one, would run on its own.
        self.open = False
        if self._pipelined:
            if self._begun or len(self._pending) > 1:
                self._pending.append(("COMMIT", None, None, None))
                self._flush()
                if self._cursor.statusmessage != "COMMIT":
                    # A failed transaction (an error someone went on after): PostgreSQL rolls
                    # it back on COMMIT, without an error, its tag saying ROLLBACK.
                    from psycopg import errors

                    raise errors.InFailedSqlTransaction("the transaction had failed: rolled back")
            self._pending.clear()
        else:
            self._driver.commit()
        self._committed = True

    def rollback(self) -> None:
        """End the transaction without keeping anything; queued writes are dropped unsent. A
        no-op after a commit, but not after a failed one (it may have left the transaction
        open, failed)."""
        if self._committed or self._rolled_back:
            return
        self.open = False
        self._rolled_back = True
        self._pending.clear()
        if not self._pipelined:
            self._driver.rollback()
        elif self._driver.info.transaction_status.name != "IDLE":
            # Asked of the connection, not of our own bookkeeping: whatever reached the server
            # before a failure, the connection goes back to the pool outside any transaction. A
            # reader that has not failed commits: the same for a read-only transaction, and
            # psycopg, which sends its readers' statements, keeps them prepared (after a ROLLBACK
            # it deallocates every statement of the connection, the wire's too).
            status = self._driver.info.transaction_status.name
            self._cursor.execute(
                "COMMIT" if status == "INTRANS" and not self._write else "ROLLBACK"
            )

    def close(self) -> None:
        """Done with the connection. Kept cursors stay open; SQLite's are closed, since one left
        part-way through a query would hold its statement, and the read snapshot with it, open.
        A PostgreSQL connection stays in autocommit mode (setting it costs a transfer ~1% each
        way) while units of work hand it to each other: `for_the_pool` ends it."""
        self._closed = True
        if not self._kept:
            for cursor in (*self._side_cursors, *self._later_cursors):
                cursor.close()
            self._cursor.close()

    def _check_open(self) -> None:
        if not self.open:
            raise RuntimeError(
                "a statement after its transaction ended (commit, rollback, or a failed round trip)"
            )

    def _failed_round_trip(self, error: BaseException) -> None:
        """A round trip with statements that waited failed. Refused by the server (an error
        with a SQLSTATE), it saw them all: PostgreSQL then refuses everything but a rollback,
        to the savepoint or of the whole. Otherwise some may not have gone out at all (a value
        that cannot be sent fails the round trip before anything is written, BEGIN too), and
        going on would commit what comes next without them, perhaps outside any transaction:
        only the rollback is left."""
        if getattr(error, "sqlstate", None) is None:
            self.open = False
            self._pending.clear()

    def _send(self, sql: str, params: Any) -> None:
        if self._pending:
            try:
                with self._sender.pipeline():
                    self._drain()
                    self._cursor.execute(sql, params)
            except BaseException as exc:
                self._failed_round_trip(exc)
                raise
        else:
            self._cursor.execute(sql, params)

    def _flush(self) -> None:
        try:
            with self._sender.pipeline():
                self._drain()
        except BaseException as exc:
            self._failed_round_trip(exc)
            raise

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
