"""The ledger in SQL: accounts with stored balances, journal entries, postings, and `verify`.

`post` is the one way money moves. Each posting is one conditional UPDATE that applies the amount
only if the account is active, in the posting's currency, and (for a wallet) stays non-negative;
the UPDATE returns the new balance, which is stored on the posting. Accounts are updated in
ascending id order, so two entries touching the same accounts always lock them in the same order
and cannot deadlock each other.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from operator import attrgetter
from typing import Any, NoReturn

from sqlalchemy import (
    BigInteger,
    ClauseElement,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)

from mwallet.core.db.prepared import Prepared, insert_into
from mwallet.core.db.tables import (
    accounts,
    journal_entries,
    postings,
    users,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.instants import utc_micros, utc_moment
from mwallet.core.domain.ledger import (
    MAX_BALANCE_MINOR,
    NON_NEGATIVE_KINDS,
    POSTED_AHEAD_TOLERANCE,
    Account,
    AccountKind,
    AccountStatus,
    EntryKind,
    JournalEntry,
    LedgerReport,
    Posting,
)
from mwallet.core.domain.money import Money
from mwallet.core.errors import (
    BalanceLimitReached,
    CurrencyMismatch,
    InsufficientFunds,
    LedgerInvariantBroken,
    WalletClosed,
    WalletFrozen,
)

# How many problems (or warnings) `verify` names before it only counts.
MAX_PROBLEMS_LISTED = 20


def _listed(found: list[str]) -> tuple[str, ...]:
    if len(found) <= MAX_PROBLEMS_LISTED:
        return tuple(found)
    extra = len(found) - MAX_PROBLEMS_LISTED
    return (*found[:MAX_PROBLEMS_LISTED], f"... and {extra} more")


_account_columns = (
    accounts.c.id,
    accounts.c.code,
    accounts.c.kind,
    accounts.c.currency,
    accounts.c.balance,
    accounts.c.status,
    accounts.c.owner_user_id,
)
_account_by_code = Prepared(
    lambda: select(*_account_columns).where(accounts.c.code == bindparam("code"))
)
_account_id_by_code = Prepared(
    lambda: select(accounts.c.id).where(accounts.c.code == bindparam("code"))
)
_account_by_id = Prepared(
    lambda: select(*_account_columns).where(accounts.c.id == bindparam("acct"))
)
_lock_account = Prepared(
    lambda: select(accounts.c.id).where(accounts.c.id == bindparam("id")).with_for_update()
)
_wallet_by_phone = Prepared(
    lambda: (
        select(*_account_columns)
        .join(accounts, and_(accounts.c.owner_user_id == users.c.id, accounts.c.kind == "wallet"))
        .where(users.c.phone == bindparam("phone"))
    )
)
_ACCOUNT_FIELDS = ("code", "kind", "currency", "balance", "status", "owner_user_id", "created_at")
_insert_account = Prepared(
    lambda: (
        insert(accounts)
        .values({name: bindparam(name) for name in _ACCOUNT_FIELDS})
        .returning(accounts.c.id)
    )
)
# Status changes are conditional too: a closed account never reopens, and only an empty one
# closes — checked by the UPDATE itself, so a transfer committing meanwhile cannot slip past.
_set_status = Prepared(
    lambda: (
        update(accounts)
        .where(
            accounts.c.id == bindparam("acct"),
            accounts.c.status != AccountStatus.CLOSED.value,
            or_(accounts.c.balance == 0, bindparam("st") != AccountStatus.CLOSED.value),
        )
        .values(status=bindparam("st"))
        .returning(accounts.c.status)
    )
)
_non_negative = sorted(kind.value for kind in NON_NEGATIVE_KINDS)  # one SQL text in every process
# One conditional UPDATE per posting: it applies only to an active account in the posting's
# currency that, if it must not go negative, still covers the amount; it returns the new balance
# and the posting's time: the entry's, or a microsecond after the account's last posting if that
# is not older (under the account's lock, so strictly increasing along the account's postings).
_apply_posting = Prepared(
    lambda: (
        update(accounts)
        .where(
            accounts.c.id == bindparam("acct"),
            accounts.c.status == AccountStatus.ACTIVE.value,
            accounts.c.currency == bindparam("cur"),
            or_(
                and_(*(accounts.c.kind != kind for kind in _non_negative)),
                accounts.c.balance + bindparam("delta") >= 0,
            ),
            accounts.c.balance + bindparam("delta") <= MAX_BALANCE_MINOR,
            accounts.c.balance + bindparam("delta") >= -MAX_BALANCE_MINOR,
        )
        .values(
            balance=accounts.c.balance + bindparam("delta"),
            posted_at=case(
                (accounts.c.posted_at < bindparam("now"), bindparam("now")),
                else_=accounts.c.posted_at + 1,
            ),
        )
        .returning(accounts.c.balance, accounts.c.posted_at)
    )
)
_insert_entry = Prepared(
    lambda: insert_into(
        journal_entries, "id", "kind", "created_at", "memo", "ref_id", micros=("created_at",)
    )
)
_POSTING_FIELDS = ("entry_id", "account_id", "amount", "currency", "balance_after", "created_at")
# A posting's time is bound as the microseconds its account's UPDATE returned, not a datetime.
_POSTING_TYPES = {"created_at": BigInteger()}


@cache
def _posting_params(row: int) -> tuple[str, ...]:
    """The parameter names of the `row`th posting of `_insert_postings`, by `_POSTING_FIELDS`
    (named once, not formatted again for every posting)."""
    return tuple(f"{name}_{row}" for name in _POSTING_FIELDS)


@lru_cache(maxsize=8)
def _insert_postings(count: int) -> Prepared:
    """One INSERT of `count` postings (one statement for the server, not `count`), legs 0 to
    `count` - 1 in the order their parameters are numbered."""
    return Prepared(
        lambda: (
            insert(postings)
            .values(
                [
                    {
                        "leg": row,  # a constant, written into the SQL
                        **{
                            name: bindparam(
                                param, type_=_POSTING_TYPES.get(name, postings.c[name].type)
                            )
                            for name, param in zip(
                                _POSTING_FIELDS, _posting_params(row), strict=True
                            )
                        },
                    }
                    for row in range(count)
                ]
            )
            .inline()
        )
    )


# By the postings' time (their entry's, or just after their account's last): the index on
# (account, time) finds the account's postings since `since` alone; the entries have no index on
# time (0017).
_paid_out = Prepared(
    lambda: (
        select(func.count(), func.coalesce(-func.sum(postings.c.amount), 0))
        .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .where(
            postings.c.account_id == bindparam("acct"),
            postings.c.created_at >= bindparam("since"),
            postings.c.amount < 0,
            journal_entries.c.kind == bindparam("kind"),
        )
    )
)

# --- verify: each query finds one kind of problem ------------------------------------------------
_count_accounts = Prepared(lambda: select(func.count()).select_from(accounts))
_count_entries = Prepared(lambda: select(func.count()).select_from(journal_entries))
_count_postings = Prepared(lambda: select(func.count()).select_from(postings))


def _drift_query() -> ClauseElement:
    """Accounts whose stored balance is not what their postings add up to, or whose time of last
    posting is older than their latest posting (its next posting would not come after it)."""
    latest = type_coerce(postings.c.created_at, BigInteger)
    sums = (
        select(
            postings.c.account_id,
            func.sum(postings.c.amount).label("total"),
            func.max(latest).label("latest"),
        )
        .group_by(postings.c.account_id)
        .subquery()
    )
    return (
        select(
            accounts.c.code,
            accounts.c.balance,
            func.coalesce(sums.c.total, 0),
            accounts.c.posted_at,
            func.coalesce(sums.c.latest, 0),
        )
        .outerjoin(sums, sums.c.account_id == accounts.c.id)
        .where(
            or_(
                accounts.c.balance != func.coalesce(sums.c.total, 0),
                accounts.c.posted_at < func.coalesce(sums.c.latest, 0),
            )
        )
        .order_by(accounts.c.id)
    )


_drifted = Prepared(_drift_query)
_unbalanced = Prepared(
    lambda: (
        select(postings.c.entry_id, postings.c.currency, func.sum(postings.c.amount))
        .group_by(postings.c.entry_id, postings.c.currency)
        .having(func.sum(postings.c.amount) != 0)
        .order_by(postings.c.entry_id)
    )
)
_thin = Prepared(
    lambda: (
        select(journal_entries.c.id, func.count(postings.c.leg))
        .outerjoin(postings, postings.c.entry_id == journal_entries.c.id)
        .group_by(journal_entries.c.id)
        .having(func.count(postings.c.leg) < 2)
        .order_by(journal_entries.c.id)
    )
)
_negative = Prepared(
    lambda: (
        select(accounts.c.code, accounts.c.balance)
        .where(or_(*(accounts.c.kind == kind for kind in _non_negative)), accounts.c.balance < 0)
        .order_by(accounts.c.id)
    )
)
_foreign = Prepared(
    lambda: (
        select(postings.c.entry_id, postings.c.leg, accounts.c.code)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(postings.c.currency != accounts.c.currency)
        .order_by(postings.c.entry_id, postings.c.leg)
    )
)


def _broken_chain_query() -> ClauseElement:
    """Postings whose running balance does not follow from their account's posting before them,
    in the order the balance followed them: their times, strictly increasing along an account (a
    posting dated out of its place breaks the chain where it lands, unless it took the place of
    one that moved the balance alike: `_before_entry` finds those; two at one time, the unique
    index refuses)."""
    chain = select(
        postings.c.entry_id,
        postings.c.leg,
        postings.c.amount.label("amount"),
        postings.c.balance_after.label("after"),
        func.lag(postings.c.balance_after, 1, literal(0))
        .over(partition_by=postings.c.account_id, order_by=postings.c.created_at)
        .label("before"),
    ).subquery()
    return (
        select(chain.c.entry_id, chain.c.leg)
        .where(chain.c.before + chain.c.amount != chain.c.after)
        .order_by(chain.c.entry_id, chain.c.leg)
    )


_broken_chain = Prepared(_broken_chain_query)
# Postings dated before their entry: a posting takes its entry's time, or a microsecond after its
# account's last posting (`_apply_posting`), never an earlier one. The time is the only order an
# account's postings keep (0020): two that moved the balance alike (0 -> 1000, twice) fit each
# other's place in the running balance, and swapping their times leaves the chain whole; the one
# moved earlier lands before its own entry was made.
_before_entry = Prepared(
    lambda: (
        select(postings.c.entry_id, postings.c.leg)
        .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .where(
            type_coerce(postings.c.created_at, BigInteger)
            < type_coerce(journal_entries.c.created_at, BigInteger)
        )
        .order_by(postings.c.entry_id, postings.c.leg)
    )
)
_ahead = Prepared(
    lambda: (
        select(accounts.c.code, accounts.c.posted_at)
        .where(accounts.c.posted_at > bindparam("limit", type_=BigInteger))
        .order_by(accounts.c.id)
    )
)
_totals = Prepared(
    lambda: select(accounts.c.currency, func.sum(accounts.c.balance)).group_by(accounts.c.currency)
)


class AccountIds:
    """Account code -> id, remembered: an account's id never changes once it is committed."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> int | None:
        return self._ids.get(code)

    def remember(self, code: str, account_id: int) -> None:
        with self._lock:
            self._ids[code] = account_id


# A stored kind or status to its member by a dict look-up (~0.1 us; the enum's call ~0.7, and a
# transfer reads accounts and users on every request); an unknown value still raises ValueError.
_KIND_OF = {kind.value: kind for kind in AccountKind}
_STATUS_OF = {status.value: status for status in AccountStatus}


def _account_from(values: Sequence[Any]) -> Account:
    account_id, code, kind, currency, balance, status, owner = values
    return Account(
        id=int(account_id),
        code=str(code),
        kind=_KIND_OF.get(kind) or AccountKind(kind),
        currency=str(currency),
        balance=Money(int(balance), str(currency)),
        status=_STATUS_OF.get(status) or AccountStatus(status),
        owner_user_id=None if owner is None else str(owner),
    )


_by_account = attrgetter("account_id")  # postings are applied in account order (see `post`)


class SqlLedgerRepository:
    def __init__(self, sql: SqlTransaction, account_ids: AccountIds) -> None:
        self._sql = sql
        self._ids = account_ids
        self._opened_here: set[str] = set()

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
        self._opened_here.add(code)  # not committed yet: not to be remembered
        return int(row[0])

    def account_id(self, code: str) -> int | None:
        if (known := self._ids.get(code)) is not None:
            return known
        row = self._sql.one(_account_id_by_code, {"code": code})
        if row is None:
            return None
        if code not in self._opened_here:
            self._ids.remember(code, int(row[0]))
        return int(row[0])

    def lock(self, account_id: int) -> None:
        """Hold the account's row until the transaction ends (SQLite: its writers already take
        turns), for a movement that must see every other one of the account committed first."""
        if self._sql.dialect_name == "postgresql":
            self._sql.one(_lock_account, {"id": account_id})

    def by_code(self, code: str) -> Account | None:
        row = self._sql.one(_account_by_code, {"code": code})
        return _account_from(row) if row is not None else None

    def wallet_by_phone(self, phone: str) -> Account | None:
        row = self._sql.one(_wallet_by_phone, {"phone": phone})
        return None if row is None else _account_from(row)

    def set_status(self, account_id: int, status: AccountStatus) -> bool:
        changed = self._sql.one(
            _set_status,
            {"acct": account_id, "st": status.value},
        )
        return changed is not None

    def post(self, entry: JournalEntry, *, names: Mapping[int, str] | None = None) -> None:
        ordered = sorted(entry.postings, key=_by_account)
        now = utc_micros(entry.created_at)
        applied = self._sql.one_each(
            _apply_posting,
            [
                {
                    "acct": posting.account_id,
                    "cur": posting.amount.currency,
                    "delta": posting.amount.minor,
                    "now": now,
                }
                for posting in ordered
            ],
        )
        values: dict[str, object] = {}  # the postings' rows, each with the balance it leaves
        for number, (posting, row) in enumerate(zip(ordered, applied, strict=True)):
            if row is None:
                self._refuse(posting, (names or {}).get(posting.account_id))
            entry_id, account_id, amount, currency, balance_after, created_at = _posting_params(
                number
            )
            values[entry_id] = entry.id
            values[account_id] = posting.account_id
            values[amount] = posting.amount.minor
            values[currency] = posting.amount.currency
            values[balance_after], values[created_at] = row
        self._sql.write(
            _insert_entry,
            {
                "id": entry.id,
                "kind": entry.kind.value,
                "created_at": now,
                "memo": entry.memo,
                "ref_id": entry.ref,
            },
        )
        self._sql.write(_insert_postings(len(ordered)), values)

    def _refuse(self, posting: Posting, name: str | None) -> NoReturn:
        """Say why a posting's conditional update matched no row; always raises."""
        row = self._sql.one(_account_by_id, {"acct": posting.account_id})
        if row is None:
            raise LedgerInvariantBroken(f"account {posting.account_id} does not exist")
        account = _account_from(row)
        what = name or f"the account {account.code}"
        if account.status is AccountStatus.FROZEN:
            raise WalletFrozen(f"{what} is frozen".capitalize())
        if account.status is AccountStatus.CLOSED:
            raise WalletClosed(f"{what} is closed".capitalize())
        if account.currency != posting.amount.currency:
            raise CurrencyMismatch(
                f"{what} keeps {account.currency}, not {posting.amount.currency}"
            )
        if abs(account.balance.minor + posting.amount.minor) > MAX_BALANCE_MINOR:
            raise BalanceLimitReached(f"{what} would pass the largest balance an account may hold")
        # Otherwise the balance did not cover the debit when the UPDATE ran (it may have moved
        # since: this read is a later snapshot).
        raise InsufficientFunds(
            f"insufficient funds: {what} has {account.balance}, "
            f"the movement needs {-posting.amount}"
        )

    def paid_out(self, account_id: int, kind: EntryKind, since: datetime) -> tuple[int, int]:
        row = self._sql.one(_paid_out, {"acct": account_id, "kind": kind.value, "since": since})
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def verify(self, now: datetime) -> LedgerReport:
        sql = self._sql

        def count(query: Prepared) -> int:
            row = sql.one(query, {})
            return int(row[0]) if row is not None else 0

        problems: list[str] = []
        for code, stored, computed, posted_at, latest in sql.all(_drifted, {}):
            if stored != computed:
                problems.append(
                    f"account {code}: stored balance {stored} but its postings sum to {computed}"
                )
            if posted_at < latest:
                problems.append(
                    f"account {code}: its last posting is later than the time it keeps for it"
                )
        problems += [
            f"entry {entry_id}: {currency} postings sum to {total}, not zero"
            for entry_id, currency, total in sql.all(_unbalanced, {})
        ]
        problems += [f"entry {entry_id}: only {n} posting(s)" for entry_id, n in sql.all(_thin, {})]
        problems += [f"wallet {code} is negative: {bal}" for code, bal in sql.all(_negative, {})]
        problems += [
            f"entry {entry_id}, posting {leg}: not in the currency of {code}"
            for entry_id, leg, code in sql.all(_foreign, {})
        ]
        problems += [
            f"entry {entry_id}, posting {leg}: running balance does not follow"
            for entry_id, leg in sql.all(_broken_chain, {})
        ]
        problems += [
            f"entry {entry_id}, posting {leg}: dated before its entry"
            for entry_id, leg in sql.all(_before_entry, {})
        ]
        warnings = [
            f"account {code}: its last posting is dated "
            f"{utc_moment(int(posted_at)).isoformat(timespec='seconds')}, ahead of the clock "
            f"({now.isoformat(timespec='seconds')}): a clock ran ahead, and its postings "
            "since are dated after that moment"
            for code, posted_at in sql.all(
                _ahead, {"limit": utc_micros(now + POSTED_AHEAD_TOLERANCE)}
            )
        ]
        totals = {str(currency): int(total) for currency, total in sql.all(_totals, {})}
        problems += [
            f"{currency}: all balances sum to {total}, not zero"
            for currency, total in sorted(totals.items())
            if total != 0
        ]
        return LedgerReport(
            accounts=count(_count_accounts),
            entries=count(_count_entries),
            postings=count(_count_postings),
            totals_by_currency=totals,
            problems=_listed(problems),
            warnings=_listed(warnings),
        )
