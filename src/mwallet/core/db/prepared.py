"""Hot-path SQL: statements compiled once per dialect and run straight on the driver's cursor.

SQLAlchemy builds and compiles each statement once (its bind and result type processors
included); executing then costs a driver call, not a trip through SQLAlchemy's execution
machinery — the difference between ~0.3x and ~0.6x of raw driver speed for a transfer.

`core.db.transaction.SqlTransaction` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import BigInteger, BindParameter, Dialect, Insert, Table, bindparam, insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import replacement_traverse

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None
_NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # psycopg's `%(name)s`


class InsertPart:
    """A plain INSERT (no RETURNING, no ON CONFLICT) as it goes into a statement made of several
    (`core.db.transaction`): its table, its SQL with positional placeholders (`%s`, so no name
    can clash with another part's), and what picks its values, in placeholder order, from the
    mapping it is given."""

    __slots__ = ("pick", "sql", "table")

    def __init__(self, table: str, sql: str, names: tuple[str, ...]) -> None:
        self.table = table
        self.sql = sql
        self.pick = picker(names)


def _insert_part(statement: ClauseElement, compiled: SQLCompiler, sql: str) -> InsertPart | None:
    """The statement as a part of a merged one, if it is a plain INSERT that can be one.

    Only inserts: statements in one merged statement share one snapshot and do not see each
    other's changes, so two UPDATEs of one row would lose one; an upsert, or an INSERT whose values
    come from a query, would not see a row a sibling inserts. RETURNING would need reading back; a
    `%` that is not a placeholder would be mistaken for one.
    """
    if not isinstance(statement, Insert) or compiled.effective_returning:
        return None
    if getattr(statement, "_post_values_clause", None) is not None:  # ON CONFLICT ...
        return None
    names = tuple(_NAMED_PLACEHOLDER.findall(sql))
    if not sql.startswith("INSERT INTO ") or "SELECT" in sql.upper():
        return None
    if sql.count("%") != len(names):
        return None
    return InsertPart(str(statement.table.name), _NAMED_PLACEHOLDER.sub("%s", sql), names)


class _Compiled:
    """One statement compiled for one dialect, with what it takes to bind and read it fast."""

    __slots__ = (
        "binders",
        "constants",
        "insert_part",
        "names",
        "parameters",
        "pick",
        "positional",
        "positional_binders",
        "result_positions",
        "results",
        "row",
        "sql",
    )

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled, sql, names = _compile(statement, dialect)
        self.sql = sql
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = names
        # Literal values not written into the SQL (see `_compile`) travel as bound constants.
        self.constants: dict[str, Any] = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required and name in names
        }
        processors = compiled._bind_processors  # the type processors SQLAlchemy would apply
        self.binders: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (name, processor)
            for name in dict.fromkeys(self.names)  # a name bound twice is converted once
            if callable(processor := processors.get(name))
        )
        # Positional drivers (sqlite3) take a tuple in placeholder order; their conversions are
        # made on the picked values, by position, with no dictionary built for them.
        self.pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            picker(self.names) if self.positional else _no_pick
        )
        self.positional_binders: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (index, processor)
            for index, name in enumerate(self.names)
            if callable(processor := processors.get(name))
        )
        results = tuple(
            type_._cached_result_processor(dialect, None) for type_ in _result_columns(compiled)
        )
        self.results: tuple[_Processor, ...] | None = results if any(results) else None
        # Only the columns that convert are visited (a wallet found by phone: 1 of 14).
        self.result_positions: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (index, process) for index, process in enumerate(results) if process is not None
        )
        # What binding and reading take, chosen once: most statements convert nothing, and then
        # these are C calls (itemgetter, tuple), not a Python method that finds out each time.
        self.parameters: Callable[[Params], Sequence[Any] | Mapping[str, Any]] = (
            (self._converted_positions if self.positional else self._converted_parameters)
            if self.constants or self.binders
            else self.pick
            if self.positional
            else _as_given
        )
        self.row: Callable[[Sequence[Any]], tuple[Any, ...]] = (
            tuple if self.results is None else self._converted_row
        )
        # Decided once: whether queued writes may carry this one in a statement with others.
        self.insert_part = (
            _insert_part(statement, compiled, sql) if dialect.paramstyle == "pyformat" else None
        )

    def _converted_parameters(self, params: Params) -> Mapping[str, Any]:
        params = {**self.constants, **params}
        for name, bind in self.binders:
            params[name] = bind(params[name])
        return params

    def _converted_positions(self, params: Params) -> Sequence[Any]:
        values = list(self.pick({**self.constants, **params} if self.constants else params))
        for index, bind in self.positional_binders:
            values[index] = bind(values[index])
        return values

    def _converted_row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        row = list(raw)
        for index, process in self.result_positions:
            if (value := row[index]) is not None:
                row[index] = process(value)
        return tuple(row)


def _compile(
    statement: ClauseElement, dialect: Dialect
) -> tuple[SQLCompiler, str, tuple[str, ...]]:
    """The statement compiled, its SQL, and the names of its placeholders in order.

    Plain literal values in the statement (`status == 'active'`, the kinds of account that may not
    go below zero, a bound on a balance) are written into the SQL, not bound: each bound value
    costs the driver a conversion on every execution (psycopg ~1 us apiece, and a posting's UPDATE
    had nine). Any other value stays a placeholder, bound as a constant (`_Compiled.constants`).
    """
    inlined = cast(
        ClauseElement, replacement_traverse(statement, {}, partial(_as_literal, dialect))
    )
    compiled = inlined.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DML and queries only
        raise TypeError("only SQL statements can be prepared")
    if compiled.post_compile_params:  # an IN list, say: its SQL would depend on the values
        raise ValueError("prepared statements cannot expand parameters at run time")
    # SQLAlchemy writes the marked literals in; the other placeholders only need a name here.
    required = {name: None for bind, name in compiled.bind_names.items() if bind.required}
    expanded = compiled.construct_expanded_state(required)
    return compiled, expanded.statement, tuple(expanded.positiontup or expanded.parameters)


# What a literal may be to be written into the SQL: text that reads the same in every dialect
# (no quote, backslash or `%` to escape), or an integer; and of a type the driver takes as is.
_PLAIN_TEXT = re.compile(r"[\w .:/-]*\Z", re.ASCII)


def _as_literal(dialect: Dialect, element: Any) -> Any:
    """A plain bound literal, marked to be written into the SQL; None for anything else."""
    if not isinstance(element, BindParameter) or element.required or element.expanding:
        return None
    value = element.effective_value
    plain = (
        _PLAIN_TEXT.match(value) is not None
        if isinstance(value, str)
        else isinstance(value, int) and not isinstance(value, bool)
    )
    if not plain or element.type._cached_bind_processor(dialect) is not None:
        return None
    return element.render_literal_execute()


def picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """What takes the values of `names`, in order, from a mapping, as a tuple (C, for several)."""
    if not names:
        return lambda _params: ()
    if len(names) == 1:
        (name,) = names
        return lambda params: (params[name],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*names)
    return getter


def _as_given(params: Params) -> Params:
    return params


def _no_pick(_params: Mapping[str, Any]) -> tuple[Any, ...]:  # pragma: no cover - never called
    raise AssertionError("named-parameter drivers take the mapping itself")


def _result_columns(compiled: Any) -> list[Any]:
    # Each entry is (keyname, name, objects, type); statements without rows have none.
    return [entry[3] for entry in getattr(compiled, "_result_columns", None) or []]


def dialect_insert(dialect: str) -> Any:
    """The dialect's own INSERT construct (with ON CONFLICT), imported only when it is used."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def insert_into(table: Table, *columns: str, micros: Collection[str] = ()) -> Insert:
    """An INSERT of exactly `columns`, each bound by its own name (autoincrement keys left out).

    The columns named in `micros` (times) are bound as the integer microseconds the caller gives
    (`domain.movements.utc_micros`), not as datetimes converted on every execution: a statement
    with nothing to convert is bound by one C call (`_Compiled.parameters`)."""
    return (
        insert(table)
        .values(
            {
                name: bindparam(name, type_=BigInteger()) if name in micros else bindparam(name)
                for name in columns
            }
        )
        .inline()
    )


class Prepared:
    """A statement, built and compiled for a dialect on first use, then reused.

    Give a function that builds the statement (statements are built lazily: building them all
    at import would slow every CLI start), or, where dialects need different constructs (an
    upsert, say), a mapping of dialect name to such a function.
    """

    __slots__ = ("_build", "by_dialect")

    def __init__(
        self, build: Callable[[], ClauseElement] | Mapping[str, Callable[[], ClauseElement]]
    ) -> None:
        self._build = build
        # Dialect name -> the statement compiled for it; `SqlTransaction` looks here first.
        self.by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        try:
            return self.by_dialect[dialect.name]
        except KeyError:
            build = self._build[dialect.name] if isinstance(self._build, Mapping) else self._build
            built = self.by_dialect[dialect.name] = _Compiled(build(), dialect)
            return built
