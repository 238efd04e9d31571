"""Hot-path SQL: statements compiled once per dialect and run straight on the driver's cursor.

SQLAlchemy builds and compiles each statement once (its bind and result type processors
included); executing then costs a driver call, not a trip through SQLAlchemy's execution
machinery — the difference between ~0.3x and ~0.6x of raw driver speed for a transfer.

`SqlSession` owns the transaction on a driver connection checked out of SQLAlchemy's pool; on
PostgreSQL it pipelines: BEGIN travels with the first statement, and the writes whose results
nobody reads (journal, outbox rows) travel with the COMMIT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Insert, Table, bindparam, insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement compiled for one dialect, with what it takes to bind and read it fast."""

    __slots__ = ("binders", "constants", "names", "pick", "positional", "results", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DML and queries only
            raise TypeError("only SQL statements can be prepared")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("prepared statements cannot expand parameters at run time")
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or compiled.bind_names.values())
        # Literal values in the statement (`status == 'active'`) travel as bound constants.
        self.constants: dict[str, Any] = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }
        processors = compiled._bind_processors  # the type processors SQLAlchemy would apply
        self.binders: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (name, processor)
            for name in dict.fromkeys(self.names)  # a name bound twice is converted once
            if callable(processor := processors.get(name))
        )
        # Positional drivers (sqlite3) take a tuple in placeholder order.
        self.pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            _picker(self.names) if self.positional else _no_pick
        )
        results = tuple(
            type_._cached_result_processor(dialect, None) for type_ in _result_columns(compiled)
        )
        self.results: tuple[_Processor, ...] | None = results if any(results) else None

    def parameters(self, params: Params) -> Sequence[Any] | Mapping[str, Any]:
        if self.constants or self.binders:
            params = {**self.constants, **params}
            for name, bind in self.binders:
                params[name] = bind(params[name])
        if self.positional:
            return self.pick(params)
        return params

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if self.results is None:
            return tuple(raw)
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if not names:
        return lambda _params: ()
    if len(names) == 1:
        (name,) = names
        return lambda params: (params[name],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*names)
    return getter


def _no_pick(_params: Mapping[str, Any]) -> tuple[Any, ...]:  # pragma: no cover - never called
    raise AssertionError("named-parameter drivers take the mapping itself")


def _result_columns(compiled: Any) -> list[Any]:
    # Each entry is (keyname, name, objects, type); statements without rows have none.
    return [entry[3] for entry in getattr(compiled, "_result_columns", None) or []]


def insert_into(table: Table, *columns: str) -> Insert:
    """An INSERT of exactly `columns`, each bound by its own name (autoincrement keys left out)."""
    return insert(table).values({name: bindparam(name) for name in columns}).inline()


class Prepared:
    """A statement, built and compiled for a dialect on first use, then reused.

    Give a function that builds the statement (statements are built lazily: building them all
    at import would slow every CLI start), or, where dialects need different constructs (an
    upsert, say), a mapping of dialect name to such a function.
    """

    __slots__ = ("_build", "_by_dialect")

    def __init__(
        self, build: Callable[[], ClauseElement] | Mapping[str, Callable[[], ClauseElement]]
    ) -> None:
        self._build = build
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        try:
            return self._by_dialect[dialect.name]
        except KeyError:
            build = self._build[dialect.name] if isinstance(self._build, Mapping) else self._build
            built = self._by_dialect[dialect.name] = _Compiled(build(), dialect)
            return built


class SqlSession:
    """One transaction on one driver connection, run with prepared statements.

    SQLite: `BEGIN IMMEDIATE` (writers) or `BEGIN` (readers) at once; each statement runs as it
    comes. PostgreSQL (psycopg in autocommit mode, so the session says BEGIN itself): BEGIN waits
    to travel with the first statement, writes whose results nobody reads wait for the next read
    or the commit, and statements that go out together share one pipelined round trip.
    """

    def __init__(self, driver: Any, dialect: Dialect, *, write: bool) -> None:
        self._driver = driver
        self._dialect = dialect
        self._pipelined = dialect.name == "postgresql"
        self._cursor = driver.cursor()
        self._side_cursors: list[Any] = []  # for pipelined statements read side by side
        # Statements waiting to go out: (sql, parameters, many) where `many` runs executemany.
        self._pending: list[tuple[str, Any, bool]] = []
        self.open = True
        if self._pipelined:
            driver.autocommit = True
            self._pending.append(
                ("BEGIN", None, False)
                if write
                else ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", None, False)
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
            self._pending.append((compiled.sql, compiled.parameters(params), False))
        else:
            self._cursor.execute(compiled.sql, compiled.parameters(params))

    def write_many(self, prepared: Prepared, rows: Sequence[Params]) -> None:
        compiled = prepared.compiled(self._dialect)
        if self._pipelined:
            self._pending.append((compiled.sql, [compiled.parameters(row) for row in rows], True))
        else:
            self._cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])

    def commit(self) -> None:
        if self._pipelined:
            if self._begun or len(self._pending) > 1:
                self._pending.append(("COMMIT", None, False))
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
        try:
            for cursor in self._side_cursors:
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
        cursor = self._cursor
        for sql, params, many in pending:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        self._begun = True
