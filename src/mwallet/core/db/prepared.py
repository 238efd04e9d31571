"""Hot-path SQL: statements compiled once per dialect and run straight on the driver's cursor.

SQLAlchemy builds and compiles each statement once (its bind and result type processors
included); executing then costs a driver call, not a trip through SQLAlchemy's execution
machinery — the difference between ~0.3x and ~0.6x of raw driver speed for a transfer.

`SqlSession.write` queues statements whose results nobody reads (journal inserts, outbox rows);
they go out before the next read and at commit, which on PostgreSQL is a single pipelined round
trip together with the COMMIT itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, bindparam, insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None


class _Compiled:
    __slots__ = ("binders", "constants", "names", "positional", "results", "sql")

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
            (name, processor) for name in self.names if callable(processor := processors.get(name))
        )
        self.results: tuple[_Processor, ...] = tuple(
            type_._cached_result_processor(dialect, None) for type_ in _result_columns(compiled)
        )

    def parameters(self, params: Params) -> Sequence[Any] | Mapping[str, Any]:
        if self.constants:
            params = {**self.constants, **params}
        if self.binders:
            params = dict(params)
            for name, bind in self.binders:
                params[name] = bind(params[name])
        if self.positional:
            return tuple(params[name] for name in self.names)
        return params

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not any(self.results):
            return tuple(raw)
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


def _result_columns(compiled: Any) -> list[Any]:
    # Each entry is (keyname, name, objects, type); statements without rows have none.
    return [entry[3] for entry in getattr(compiled, "_result_columns", None) or []]


def insert_into(table: Table, *columns: str) -> Insert:
    """An INSERT of exactly `columns`, each bound by its own name (autoincrement keys left out)."""
    return insert(table).values({name: bindparam(name) for name in columns}).inline()


class Prepared:
    """A Core statement plus its compiled form per dialect, built on first use."""

    __slots__ = ("_by_dialect", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        try:
            return self._by_dialect[dialect.name]
        except KeyError:
            built = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect)
            return built


class SqlSession:
    """The driver connection of one unit of work, for prepared statements."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._dialect = conn.dialect
        self._driver = conn.connection.driver_connection
        self._pipelined = self._dialect.name == "postgresql"
        self._cursor = self._driver.cursor()  # type: ignore[union-attr]
        self._queued: list[tuple[_Compiled, Any]] = []

    def one(self, prepared: Prepared, params: Params) -> tuple[Any, ...] | None:
        """The first row of a query (or RETURNING), or None."""
        self.flush()
        compiled = prepared.compiled(self._dialect)
        cursor = self._cursor
        cursor.execute(compiled.sql, compiled.parameters(params))
        raw = cursor.fetchone()
        return None if raw is None else compiled.row(raw)

    def all(self, prepared: Prepared, params: Params) -> list[tuple[Any, ...]]:
        self.flush()
        compiled = prepared.compiled(self._dialect)
        cursor = self._cursor
        cursor.execute(compiled.sql, compiled.parameters(params))
        return [compiled.row(raw) for raw in cursor.fetchall()]

    def write(self, prepared: Prepared, params: Params) -> None:
        """Queue a statement whose result is not read; it runs before the next read or commit."""
        compiled = prepared.compiled(self._dialect)
        if self._pipelined:
            self._queued.append((compiled, compiled.parameters(params)))
        else:
            self._cursor.execute(compiled.sql, compiled.parameters(params))

    def write_many(self, prepared: Prepared, rows: Sequence[Params]) -> None:
        compiled = prepared.compiled(self._dialect)
        if self._pipelined:
            self._queued.extend((compiled, compiled.parameters(row)) for row in rows)
        else:
            self._cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])

    def flush(self, *, commit: bool = False) -> None:
        """Send queued writes (and, if asked, the COMMIT) in one round trip where the driver can."""
        if not self._queued and not commit:
            return
        queued, self._queued = self._queued, []
        if not self._pipelined:
            return  # SQLite ran each write at once; SQLAlchemy's commit sends COMMIT.
        with self._driver.pipeline():  # type: ignore[union-attr]
            cursor = self._cursor
            for compiled, params in queued:
                cursor.execute(compiled.sql, params)
            if commit:
                self._driver.commit()  # type: ignore[union-attr]

    def discard(self) -> None:
        self._queued.clear()
        self._cursor.close()
