"""The ledger in SQL: accounts with stored balances, journal entries, postings, and `verify`.

`post` is the one way money moves. Each posting is one conditional UPDATE that applies the amount
only if the account is active, in the posting's currency, and (for a wallet) stays non-negative;
the UPDATE returns the new balance, which is stored on the posting. Accounts are updated in
ascending id order, so two entries touching the same accounts always lock them in the same order
and cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import Connection, and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import aliased

from mwallet.core.db.prepared import Prepared, SqlSession, insert_into
from mwallet.core.db.repositories import USER_COLUMNS, user_from_row
from mwallet.core.db.tables import (
    accounts,
    journal_entries,
    postings,
    topups,
    transfers,
    users,
)
from mwallet.core.domain.ledger import (
    NON_NEGATIVE_KINDS,
    Account,
    AccountKind,
    AccountStatus,
    JournalEntry,
    LedgerReport,
    Posting,
)
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import User
from mwallet.core.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    LedgerInvariantBroken,
    WalletClosed,
    WalletFrozen,
)
from mwallet.core.services.unit_of_work import HistoryLine

# How many problems `verify` names before it only counts.
MAX_PROBLEMS_LISTED = 20

_account_columns = (
    accounts.c.id,
    accounts.c.code,
    accounts.c.kind,
    accounts.c.currency,
    accounts.c.balance,
    accounts.c.status,
    accounts.c.owner_user_id,
)
_account_by_code = Prepared(select(*_account_columns).where(accounts.c.code == bindparam("code")))
_account_by_id = Prepared(select(*_account_columns).where(accounts.c.id == bindparam("acct")))
_wallet_by_phone = Prepared(
    select(*USER_COLUMNS, *_account_columns)
    .join(accounts, and_(accounts.c.owner_user_id == users.c.id, accounts.c.kind == "wallet"))
    .where(users.c.phone == bindparam("phone"))
)
_insert_account = Prepared(
    insert(accounts)
    .values(
        {
            name: bindparam(name)
            for name in (
                "code",
                "kind",
                "currency",
                "balance",
                "status",
                "owner_user_id",
                "created_at",
            )
        }
    )
    .returning(accounts.c.id)
)
_set_status = Prepared(
    update(accounts).where(accounts.c.id == bindparam("acct")).values(status=bindparam("st"))
)
_non_negative = [kind.value for kind in NON_NEGATIVE_KINDS]
# One conditional UPDATE per posting: it applies only to an active account in the posting's
# currency that, if it must not go negative, still covers the amount; it returns the new balance.
_apply_posting = Prepared(
    update(accounts)
    .where(
        accounts.c.id == bindparam("acct"),
        accounts.c.status == AccountStatus.ACTIVE.value,
        accounts.c.currency == bindparam("cur"),
        or_(
            and_(*(accounts.c.kind != kind for kind in _non_negative)),
            accounts.c.balance + bindparam("delta") >= 0,
        ),
    )
    .values(balance=accounts.c.balance + bindparam("delta"))
    .returning(accounts.c.balance)
)
_insert_entry = Prepared(insert_into(journal_entries, "id", "kind", "created_at", "memo"))
_insert_posting = Prepared(
    insert_into(postings, "entry_id", "account_id", "amount", "currency", "balance_after")
)

_sender = aliased(users)
_recipient = aliased(users)
_history = (
    select(
        postings.c.entry_id,
        journal_entries.c.kind,
        journal_entries.c.created_at,
        postings.c.amount,
        postings.c.currency,
        postings.c.balance_after,
        case(
            (postings.c.amount < 0, _recipient.c.phone),
            else_=func.coalesce(_sender.c.phone, topups.c.source),
        ),
        journal_entries.c.memo,
    )
    .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
    .outerjoin(transfers, transfers.c.id == postings.c.entry_id)
    .outerjoin(_sender, _sender.c.id == transfers.c.sender_user_id)
    .outerjoin(_recipient, _recipient.c.id == transfers.c.recipient_user_id)
    .outerjoin(topups, topups.c.id == postings.c.entry_id)
    .where(postings.c.account_id == bindparam("acct"))
    .order_by(postings.c.id.desc())
    .limit(bindparam("lim"))
)


def _account_from(values: Sequence[Any]) -> Account:
    account_id, code, kind, currency, balance, status, owner = values
    return Account(
        id=int(account_id),
        code=str(code),
        kind=AccountKind(kind),
        currency=str(currency),
        balance=Money(int(balance), str(currency)),
        status=AccountStatus(status),
        owner_user_id=None if owner is None else str(owner),
    )


class SqlLedgerRepository:
    def __init__(self, sql: SqlSession) -> None:
        self._sql = sql

    def open_account(
        self,
        *,
        code: str,
        kind: AccountKind,
        currency: str,
        owner_user_id: str | None,
        created_at: datetime,
    ) -> int:
        row = self._sql.one(
            _insert_account,
            {
                "code": code,
                "kind": kind.value,
                "currency": currency,
                "balance": 0,
                "status": AccountStatus.ACTIVE.value,
                "owner_user_id": owner_user_id,
                "created_at": created_at,
            },
        )
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
            raise LedgerInvariantBroken(f"opening account {code} returned no id")
        return int(row[0])

    def by_code(self, code: str) -> Account | None:
        row = self._sql.one(_account_by_code, {"code": code})
        return _account_from(row) if row is not None else None

    def wallet_by_phone(self, phone: str) -> tuple[User, Account] | None:
        row = self._sql.one(_wallet_by_phone, {"phone": phone})
        if row is None:
            return None
        return user_from_row(row[:5]), _account_from(row[5:])

    def set_status(self, account_id: int, status: AccountStatus) -> None:
        self._sql.write(_set_status, {"acct": account_id, "st": status.value})

    def post(self, entry: JournalEntry) -> None:
        ordered = sorted(entry.postings, key=lambda posting: posting.account_id)
        rows = []
        for posting in ordered:
            applied = self._sql.one(
                _apply_posting,
                {
                    "acct": posting.account_id,
                    "cur": posting.amount.currency,
                    "delta": posting.amount.minor,
                },
            )
            if applied is None:
                self._refuse(posting)
            new_balance = applied[0]
            rows.append(
                {
                    "entry_id": entry.id,
                    "account_id": posting.account_id,
                    "amount": posting.amount.minor,
                    "currency": posting.amount.currency,
                    "balance_after": new_balance,
                }
            )
        self._sql.write(
            _insert_entry,
            {
                "id": entry.id,
                "kind": entry.kind.value,
                "created_at": entry.created_at,
                "memo": entry.memo,
            },
        )
        self._sql.write_many(_insert_posting, rows)

    def _reader(self) -> Connection:
        """The SQLAlchemy connection, for the few queries too rich for a prepared statement."""
        self._sql.flush()
        return self._sql.conn

    def _refuse(self, posting: Posting) -> NoReturn:
        """Say why a posting's conditional update matched no row; always raises."""
        row = self._sql.one(_account_by_id, {"acct": posting.account_id})
        if row is None:
            raise LedgerInvariantBroken(f"account {posting.account_id} does not exist")
        account = _account_from(row)
        if account.status is AccountStatus.FROZEN:
            raise WalletFrozen(f"the account {account.code} is frozen")
        if account.status is AccountStatus.CLOSED:
            raise WalletClosed(f"the account {account.code} is closed")
        if account.currency != posting.amount.currency:
            raise CurrencyMismatch(
                f"the account {account.code} keeps {account.currency}, "
                f"not {posting.amount.currency}"
            )
        raise InsufficientFunds(
            f"insufficient funds: the wallet has {account.balance}, "
            f"the movement needs {-posting.amount}"
        )

    def history(self, account_id: int, *, limit: int) -> Sequence[HistoryLine]:
        return [
            HistoryLine(
                entry_id=row[0],
                kind=row[1],
                created_at=row[2],
                amount=Money(row[3], row[4]),
                balance_after=Money(row[5], row[4]),
                counterparty=row[6],
                note=row[7],
            )
            for row in self._reader().execute(_history, {"acct": account_id, "lim": limit})
        ]

    def verify(self) -> LedgerReport:
        problems: list[str] = []
        conn = self._reader()
        n_accounts = conn.execute(select(func.count()).select_from(accounts)).scalar_one()
        n_entries = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
        n_postings = conn.execute(select(func.count()).select_from(postings)).scalar_one()

        sums = (
            select(postings.c.account_id, func.sum(postings.c.amount).label("total"))
            .group_by(postings.c.account_id)
            .subquery()
        )
        drifted = conn.execute(
            select(accounts.c.code, accounts.c.balance, func.coalesce(sums.c.total, 0))
            .outerjoin(sums, sums.c.account_id == accounts.c.id)
            .where(accounts.c.balance != func.coalesce(sums.c.total, 0))
            .order_by(accounts.c.id)
        ).all()
        problems += [
            f"account {code}: stored balance {stored} but its postings sum to {computed}"
            for code, stored, computed in drifted
        ]

        unbalanced = conn.execute(
            select(postings.c.entry_id, postings.c.currency, func.sum(postings.c.amount))
            .group_by(postings.c.entry_id, postings.c.currency)
            .having(func.sum(postings.c.amount) != 0)
            .order_by(postings.c.entry_id)
        ).all()
        problems += [
            f"entry {entry_id}: {currency} postings sum to {total}, not zero"
            for entry_id, currency, total in unbalanced
        ]

        thin = conn.execute(
            select(journal_entries.c.id, func.count(postings.c.id))
            .outerjoin(postings, postings.c.entry_id == journal_entries.c.id)
            .group_by(journal_entries.c.id)
            .having(func.count(postings.c.id) < 2)
            .order_by(journal_entries.c.id)
        ).all()
        problems += [f"entry {entry_id}: only {count} posting(s)" for entry_id, count in thin]

        negative = conn.execute(
            select(accounts.c.code, accounts.c.balance)
            .where(accounts.c.kind.in_(_non_negative), accounts.c.balance < 0)
            .order_by(accounts.c.id)
        ).all()
        problems += [f"wallet {code} is negative: {balance}" for code, balance in negative]

        foreign = conn.execute(
            select(postings.c.id, accounts.c.code)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.currency != accounts.c.currency)
            .order_by(postings.c.id)
        ).all()
        problems += [f"posting {pid} is not in the currency of {code}" for pid, code in foreign]

        previous = func.lag(postings.c.balance_after, 1, literal(0)).over(
            partition_by=postings.c.account_id, order_by=postings.c.id
        )
        chain = select(
            postings.c.id.label("pid"),
            postings.c.amount.label("amount"),
            postings.c.balance_after.label("after"),
            previous.label("before"),
        ).subquery()
        broken = conn.execute(
            select(chain.c.pid)
            .where(chain.c.before + chain.c.amount != chain.c.after)
            .order_by(chain.c.pid)
        ).all()
        problems += [f"posting {pid}: running balance does not follow" for (pid,) in broken]

        totals = {
            str(currency): int(total)
            for currency, total in conn.execute(
                select(accounts.c.currency, func.sum(accounts.c.balance)).group_by(
                    accounts.c.currency
                )
            )
        }
        problems += [
            f"{currency}: all balances sum to {total}, not zero"
            for currency, total in sorted(totals.items())
            if total != 0
        ]
        if len(problems) > MAX_PROBLEMS_LISTED:
            extra = len(problems) - MAX_PROBLEMS_LISTED
            problems = [*problems[:MAX_PROBLEMS_LISTED], f"... and {extra} more"]
        return LedgerReport(
            accounts=n_accounts,
            entries=n_entries,
            postings=n_postings,
            totals_by_currency={currency: int(total) for currency, total in totals.items()},
            problems=tuple(problems),
        )
