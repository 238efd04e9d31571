"""SQL repositories of cash: withdrawals, terminals and their cassettes, and instance secrets.

Every state change of a withdrawal is a conditional UPDATE from the state it leaves (`… WHERE
state = :from RETURNING`), so two terminals racing on one code cannot both move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from mwallet.core.db.prepared import Prepared, dialect_insert, insert_into
from mwallet.core.db.tables import cassettes, instance_secrets, terminals, withdrawals
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.money import Money
from mwallet.core.domain.terminals import Terminal
from mwallet.core.domain.withdrawals import (
    AT_TERMINAL,
    HOLDING,
    Channel,
    Withdrawal,
    WithdrawalState,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- instance secrets ----------------------------------------------------------------------------
_secret = Prepared(
    lambda: select(instance_secrets.c.sealed).where(instance_secrets.c.name == bindparam("name"))
)
_all_secrets = Prepared(
    lambda: select(instance_secrets.c.name, instance_secrets.c.sealed).order_by(
        instance_secrets.c.name
    )
)


def _insert_secret(dialect: str) -> Any:
    return (
        dialect_insert(dialect)(instance_secrets)
        .values(name=bindparam("name"), sealed=bindparam("sealed"), created_at=bindparam("at"))
        .on_conflict_do_nothing(index_elements=["name"])
    )


_add_secret = Prepared(
    {"sqlite": lambda: _insert_secret("sqlite"), "postgresql": lambda: _insert_secret("postgresql")}
)
_reseal_secret = Prepared(
    lambda: (
        update(instance_secrets)
        .where(instance_secrets.c.name == bindparam("name"))
        .values(sealed=bindparam("sealed"))
    )
)


class SqlInstanceSecrets:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def get(self, name: str) -> str | None:
        row = self._sql.one(_secret, {"name": name})
        return None if row is None else str(row[0])

    def add(self, name: str, sealed: str, at: datetime) -> bool:
        return self._sql.count(_add_secret, {"name": name, "sealed": sealed, "at": at}) == 1

    def all(self) -> list[tuple[str, str]]:
        return [(str(name), str(sealed)) for name, sealed in self._sql.all(_all_secrets, {})]

    def reseal(self, name: str, sealed: str) -> None:
        self._sql.write(_reseal_secret, {"name": name, "sealed": sealed})


# --- withdrawals ---------------------------------------------------------------------------------
_COLUMNS = (
    withdrawals.c.id,
    withdrawals.c.user_id,
    withdrawals.c.amount,
    withdrawals.c.currency,
    withdrawals.c.channel,
    withdrawals.c.state,
    withdrawals.c.created_at,
    withdrawals.c.expires_at,
    withdrawals.c.pin_attempts,
    withdrawals.c.terminal_id,
    withdrawals.c.updated_at,
    withdrawals.c.fee,
)
_FIELDS = (
    "id",
    "user_id",
    "amount",
    "currency",
    "channel",
    "state",
    "created_at",
    "expires_at",
    "updated_at",
    "pin_attempts",
    "terminal_id",
    "notes",
    "code_digest",
    "pin_digest",
    "nonce_digest",
    "fee",
)


def _insert_withdrawal(dialect: str) -> Any:
    return (
        dialect_insert(dialect)(withdrawals)
        .values({name: bindparam(name) for name in _FIELDS})
        .on_conflict_do_nothing(index_elements=["code_digest"])
    )


_add = Prepared(
    {
        "sqlite": lambda: _insert_withdrawal("sqlite"),
        "postgresql": lambda: _insert_withdrawal("postgresql"),
    }
)
_get = Prepared(lambda: select(*_COLUMNS).where(withdrawals.c.id == bindparam("id")))
_by_code = Prepared(lambda: select(*_COLUMNS).where(withdrawals.c.code_digest == bindparam("d")))
_secrets = Prepared(
    lambda: select(withdrawals.c.pin_digest, withdrawals.c.nonce_digest).where(
        withdrawals.c.id == bindparam("id")
    )
)
_move = Prepared(
    lambda: (
        update(withdrawals)
        .where(withdrawals.c.id == bindparam("id"), withdrawals.c.state == bindparam("from_state"))
        .values(
            state=bindparam("to_state"),
            updated_at=bindparam("at"),
            terminal_id=func.coalesce(bindparam("terminal_id"), withdrawals.c.terminal_id),
            notes=func.coalesce(bindparam("notes"), withdrawals.c.notes),
        )
        .returning(withdrawals.c.id)
    )
)
_notes = Prepared(lambda: select(withdrawals.c.notes).where(withdrawals.c.id == bindparam("id")))
_wrong_pin = Prepared(
    lambda: (
        update(withdrawals)
        .where(
            withdrawals.c.id == bindparam("id"),
            withdrawals.c.state == WithdrawalState.PENDING.value,
        )
        .values(pin_attempts=withdrawals.c.pin_attempts + 1, updated_at=bindparam("at"))
        .returning(withdrawals.c.pin_attempts)
    )
)
_of_user = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(withdrawals.c.user_id == bindparam("user_id"))
        .order_by(withdrawals.c.created_at.desc(), withdrawals.c.id.desc())
        .limit(bindparam("lim"))
    )
)
_held = Prepared(
    lambda: select(func.coalesce(func.sum(withdrawals.c.amount + withdrawals.c.fee), 0)).where(
        withdrawals.c.user_id == bindparam("user_id"),
        or_(*(withdrawals.c.state == state.value for state in sorted(HOLDING))),
    )
)
# Keyset pages in (expires_at, id) order: a sweep gets past what it could not settle.
_due = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(
            withdrawals.c.state == WithdrawalState.PENDING.value,
            withdrawals.c.expires_at <= bindparam("now"),
            or_(
                withdrawals.c.expires_at > bindparam("after_at"),
                and_(
                    withdrawals.c.expires_at == bindparam("after_at"),
                    withdrawals.c.id > bindparam("after_id"),
                ),
            ),
        )
        .order_by(withdrawals.c.expires_at, withdrawals.c.id)
        .limit(bindparam("lim"))
    )
)
_due_of_user = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(
            withdrawals.c.user_id == bindparam("user_id"),
            withdrawals.c.state == WithdrawalState.PENDING.value,
            withdrawals.c.expires_at <= bindparam("now"),
        )
        .order_by(withdrawals.c.expires_at, withdrawals.c.id)
    )
)


def _withdrawal(row: Sequence[Any]) -> Withdrawal:
    return Withdrawal(
        id=str(row[0]),
        user_id=str(row[1]),
        amount=Money(int(row[2]), str(row[3])),
        channel=Channel(row[4]),
        state=WithdrawalState(row[5]),
        created_at=row[6],
        expires_at=row[7],
        pin_attempts=int(row[8]),
        terminal_id=row[9],
        updated_at=row[10],
        fee=Money(int(row[11]), str(row[3])),
    )


class SqlWithdrawalRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(
        self, withdrawal: Withdrawal, *, code_digest: str, pin_digest: str, nonce_digest: str
    ) -> bool:
        params = {
            "id": withdrawal.id,
            "user_id": withdrawal.user_id,
            "amount": withdrawal.amount.minor,
            "currency": withdrawal.amount.currency,
            "channel": withdrawal.channel.value,
            "state": withdrawal.state.value,
            "created_at": withdrawal.created_at,
            "expires_at": withdrawal.expires_at,
            "updated_at": withdrawal.updated_at,
            "pin_attempts": withdrawal.pin_attempts,
            "terminal_id": withdrawal.terminal_id,
            "notes": None,
            "code_digest": code_digest,
            "pin_digest": pin_digest,
            "nonce_digest": nonce_digest,
            "fee": withdrawal.fee.minor,
        }
        return self._sql.count(_add, params) == 1

    def get(self, withdrawal_id: str) -> Withdrawal | None:
        row = self._sql.one(_get, {"id": withdrawal_id})
        return None if row is None else _withdrawal(row)

    def by_code(self, code_digest: str) -> Withdrawal | None:
        row = self._sql.one(_by_code, {"d": code_digest})
        return None if row is None else _withdrawal(row)

    def secrets_of(self, withdrawal_id: str) -> tuple[str, str]:
        row = self._sql.one(_secrets, {"id": withdrawal_id})
        if row is None:  # pragma: no cover - asked only of a withdrawal just read
            raise LookupError(withdrawal_id)
        return str(row[0]), str(row[1])

    def move(
        self,
        withdrawal_id: str,
        *,
        from_state: WithdrawalState,
        to_state: WithdrawalState,
        at: datetime,
        terminal_id: str | None = None,
        notes: dict[int, int] | None = None,
    ) -> bool:
        row = self._sql.one(
            _move,
            {
                "id": withdrawal_id,
                "from_state": from_state.value,
                "to_state": to_state.value,
                "at": at,
                "terminal_id": terminal_id,
                "notes": ",".join(f"{d}:{n}" for d, n in notes.items()) if notes else None,
            },
        )
        return row is not None

    def notes_of(self, withdrawal_id: str) -> dict[int, int] | None:
        row = self._sql.one(_notes, {"id": withdrawal_id})
        if row is None or not row[0]:
            return None
        pairs = (item.split(":") for item in str(row[0]).split(","))
        return {int(denomination): int(count) for denomination, count in pairs}

    def count_wrong_pin(self, withdrawal_id: str, at: datetime) -> int:
        row = self._sql.one(_wrong_pin, {"id": withdrawal_id, "at": at})
        return 0 if row is None else int(row[0])

    def of_user(self, user_id: str, *, limit: int) -> list[Withdrawal]:
        return [
            _withdrawal(row) for row in self._sql.all(_of_user, {"user_id": user_id, "lim": limit})
        ]

    def held_for(self, user_id: str) -> int:
        row = self._sql.one(_held, {"user_id": user_id})
        return 0 if row is None else int(row[0])

    def due_to_expire(
        self, now: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Withdrawal]:
        after_at, after_id = after if after is not None else (_EPOCH, "")
        params = {"now": now, "lim": limit, "after_at": after_at, "after_id": after_id}
        return [_withdrawal(row) for row in self._sql.all(_due, params)]

    def due_of_user(self, user_id: str, now: datetime) -> list[Withdrawal]:
        rows = self._sql.all(_due_of_user, {"user_id": user_id, "now": now})
        return [_withdrawal(row) for row in rows]

    def settled_at(
        self, terminal_id: str, since: datetime
    ) -> dict[WithdrawalState, tuple[int, int]]:
        rows = self._sql.all(_settled_at, {"terminal_id": terminal_id, "since": since})
        return {WithdrawalState(state): (int(count), int(total)) for state, count, total in rows}

    def left_open_at(self, terminal_id: str) -> list[Withdrawal]:
        rows = self._sql.all(_left_open_at, {"terminal_id": terminal_id})
        return [_withdrawal(row) for row in rows]


# A terminal's day: the withdrawals it settled since a time, per end state.
_settled_at = Prepared(
    lambda: (
        select(withdrawals.c.state, func.count(), func.coalesce(func.sum(withdrawals.c.amount), 0))
        .where(
            withdrawals.c.terminal_id == bindparam("terminal_id"),
            withdrawals.c.updated_at >= bindparam("since"),
            or_(
                withdrawals.c.state == WithdrawalState.COMPLETED.value,
                withdrawals.c.state == WithdrawalState.REVERSED.value,
            ),
        )
        .group_by(withdrawals.c.state)
    )
)
_left_open_at = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(
            withdrawals.c.terminal_id == bindparam("terminal_id"),
            or_(*(withdrawals.c.state == state.value for state in sorted(AT_TERMINAL))),
        )
        .order_by(withdrawals.c.updated_at, withdrawals.c.id)
    )
)


# --- terminals and cassettes ---------------------------------------------------------------------
_TERMINAL_COLUMNS = (
    terminals.c.id,
    terminals.c.kind,
    terminals.c.name,
    terminals.c.client_id,
    terminals.c.agent_user_id,
    terminals.c.created_at,
    terminals.c.unknown_codes,
    terminals.c.window_started_at,
    terminals.c.locked_until,
)
_add_terminal = Prepared(
    lambda: insert_into(
        terminals,
        "id",
        "kind",
        "name",
        "client_id",
        "agent_user_id",
        "created_at",
        "unknown_codes",
        "window_started_at",
        "locked_until",
    )
)
_terminal = Prepared(lambda: select(*_TERMINAL_COLUMNS).where(terminals.c.id == bindparam("id")))
_terminal_for_update = Prepared(
    lambda: select(*_TERMINAL_COLUMNS).where(terminals.c.id == bindparam("id")).with_for_update()
)
_by_client = Prepared(
    lambda: select(*_TERMINAL_COLUMNS).where(terminals.c.client_id == bindparam("client_id"))
)
_by_agent = Prepared(
    lambda: select(*_TERMINAL_COLUMNS).where(terminals.c.agent_user_id == bindparam("user_id"))
)
_terminals = Prepared(
    lambda: select(*_TERMINAL_COLUMNS).order_by(terminals.c.id).limit(bindparam("lim"))
)
_save_attempts = Prepared(
    lambda: (
        update(terminals)
        .where(terminals.c.id == bindparam("id"))
        .values(
            unknown_codes=bindparam("unknown_codes"),
            window_started_at=bindparam("window_started_at"),
            locked_until=bindparam("locked_until"),
        )
    )
)
_cassettes = Prepared(
    lambda: (
        select(cassettes.c.denomination, cassettes.c.notes)
        .where(cassettes.c.terminal_id == bindparam("id"))
        .order_by(cassettes.c.denomination.desc())
    )
)


def _upsert_cassette(dialect: str) -> Any:
    statement = dialect_insert(dialect)(cassettes).values(
        terminal_id=bindparam("id"), denomination=bindparam("denomination"), notes=bindparam("n")
    )
    return statement.on_conflict_do_update(
        index_elements=["terminal_id", "denomination"],
        set_={"notes": cassettes.c.notes + statement.excluded.notes},
    )


_load = Prepared(
    {
        "sqlite": lambda: _upsert_cassette("sqlite"),
        "postgresql": lambda: _upsert_cassette("postgresql"),
    }
)
_take = Prepared(
    lambda: (
        update(cassettes)
        .where(
            cassettes.c.terminal_id == bindparam("id"),
            cassettes.c.denomination == bindparam("denomination"),
            cassettes.c.notes >= bindparam("n"),
        )
        .values(notes=cassettes.c.notes - bindparam("n"))
        .returning(cassettes.c.notes)
    )
)


def _terminal_of(row: Sequence[Any]) -> Terminal:
    return Terminal(
        id=str(row[0]),
        kind=Channel(row[1]),
        name=str(row[2]),
        client_id=row[3],
        agent_user_id=row[4],
        created_at=row[5],
        unknown_codes=int(row[6]),
        window_started_at=row[7],
        locked_until=row[8],
    )


class SqlTerminalRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(self, terminal: Terminal) -> None:
        self._sql.write(
            _add_terminal,
            {
                "id": terminal.id,
                "kind": terminal.kind.value,
                "name": terminal.name,
                "client_id": terminal.client_id,
                "agent_user_id": terminal.agent_user_id,
                "created_at": terminal.created_at,
                "unknown_codes": terminal.unknown_codes,
                "window_started_at": terminal.window_started_at,
                "locked_until": terminal.locked_until,
            },
        )

    def get(self, terminal_id: str) -> Terminal | None:
        row = self._sql.one(_terminal, {"id": terminal_id})
        return None if row is None else _terminal_of(row)

    def by_client(self, client_id: str) -> Terminal | None:
        row = self._sql.one(_by_client, {"client_id": client_id})
        return None if row is None else _terminal_of(row)

    def by_agent(self, user_id: str) -> Terminal | None:
        row = self._sql.one(_by_agent, {"user_id": user_id})
        return None if row is None else _terminal_of(row)

    def lock_for_update(self, terminal_id: str) -> Terminal | None:
        row = self._sql.one(_terminal_for_update, {"id": terminal_id})
        return None if row is None else _terminal_of(row)

    def save_attempts(self, terminal: Terminal) -> None:
        self._sql.write(
            _save_attempts,
            {
                "id": terminal.id,
                "unknown_codes": terminal.unknown_codes,
                "window_started_at": terminal.window_started_at,
                "locked_until": terminal.locked_until,
            },
        )

    def page(self, *, limit: int) -> list[Terminal]:
        return [_terminal_of(row) for row in self._sql.all(_terminals, {"lim": limit})]

    def cassettes(self, terminal_id: str) -> dict[int, int]:
        return {int(d): int(n) for d, n in self._sql.all(_cassettes, {"id": terminal_id})}

    def load(self, terminal_id: str, denomination: int, notes: int) -> None:
        self._sql.write(_load, {"id": terminal_id, "denomination": denomination, "n": notes})

    def take(self, terminal_id: str, denomination: int, notes: int) -> bool:
        row = self._sql.one(_take, {"id": terminal_id, "denomination": denomination, "n": notes})
        return row is not None
