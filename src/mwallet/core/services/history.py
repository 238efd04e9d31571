"""Use cases that read a wallet's movements: history pages and statements.

A person reads their own wallet (USE_OWN_WALLET); admins and auditors read anyone's (READ_BOOKS);
a refusal is audited like every other. Reads run in one read-only transaction, so a page or a
whole statement sees one snapshot of the ledger.

Both walk the account's postings by their time (`postings(account_id, created_at)`): strictly
increasing along an account's postings, in the order its balance followed them, so a time is a
posting's key. A history page goes newest first from its cursor (the last line's posting time);
a period of dates is the run of postings made at or after its start and before its end; so a
statement's lines lead exactly from its opening balance to its closing one, and a page costs the
same however long the history.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from mwallet.core.clock import Clock
from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.ledger import Account, wallet_account_code
from mwallet.core.domain.money import Money
from mwallet.core.domain.movements import (
    Cursor,
    Movement,
    MovementFilter,
    StatementTotals,
    lines_of,
    lines_of_all,
)
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.users import Principal, normalize_phone
from mwallet.core.errors import DataIntegrityError
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork
from mwallet.core.services.whose import is_own, other_person

# Beyond any posting's time: an open end of a range.
NO_END = 2**63 - 1
# Postings a statement reads per query: memory stays bounded by this, not by the period.
STATEMENT_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Owner:
    user_id: str
    phone: str
    display_name: str


@dataclass(frozen=True, slots=True)
class MovementPage:
    owner: Owner
    movements: list[Movement]
    next_cursor: str | None  # None: this was the last page


@dataclass(slots=True)
class Statement:
    """A period's opening and closing balances and, as `lines` is read, its movements (oldest
    first) and their totals. Reading `lines` to its end checks the totals against the ledger."""

    owner: Owner
    currency: str
    start: datetime | None
    end: datetime | None
    opening: Money
    closing: Money
    postings: int | None  # how many postings the period holds, if asked for
    lines: Iterator[Movement] = field(repr=False)
    totals: StatementTotals = field(repr=False)


def history(
    uow: UnitOfWork,
    clock: Clock,
    *,
    principal: Principal,
    settings: InstanceSettings,
    phone: str | None = None,
    user_id: str | None = None,
    where: MovementFilter = MovementFilter(),  # noqa: B008 - frozen, so shared safely
    cursor: str | None = None,
    limit: int = 20,
) -> MovementPage:
    """One page of a wallet's movements, newest first, below `cursor` (the previous page's
    `next_cursor`). New movements arriving between pages never shift the pages below."""
    check_limit(limit)
    after = Cursor.to_continue(cursor) if cursor is not None else None
    where = _normalized(where, settings)
    own = _authorize(
        uow, clock, principal, settings, phone=phone, user_id=user_id,
        action="read another person's history",
    )  # fmt: skip
    with uow.read_only():
        owner, account = _wallet(uow, principal, settings, None if own else (phone, user_id))
        low, high = _bounds(where)
        if after is not None:
            high = min(high, after.posted_micros + 1)  # its fee shown, its movement not yet
        batch = limit + 1 if not where.per_line else max(4 * (limit + 1), 200)
        found: list[Movement] = []
        while low < high and len(found) <= limit:
            postings = uow.movements.postings(
                account.id, low=low, high=high, kinds=where.entry_kinds(), sign=where.sign(),
                min_minor=where.min_minor or 0, newest_first=True, limit=batch,
            )  # fmt: skip
            for posting in postings:
                for line in reversed(lines_of(posting)):
                    if (after is None or line.cursor < after) and where.matches(line):
                        found.append(line)
            if len(postings) < batch:
                break
            high = postings[-1].created_micros
    more = len(found) > limit
    shown = found[:limit]
    return MovementPage(owner, shown, shown[-1].cursor.encode() if more else None)


@contextmanager
def statement(
    uow: UnitOfWork,
    clock: Clock,
    *,
    principal: Principal,
    settings: InstanceSettings,
    phone: str | None = None,
    user_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    count: bool = False,
    batch: int = STATEMENT_BATCH,
) -> Iterator[Statement]:
    """A statement of [start, end), its lines read in batches while the caller writes them."""
    where = MovementFilter(start=start, end=end)  # checks that start < end
    own = _authorize(
        uow, clock, principal, settings, phone=phone, user_id=user_id,
        action="read another person's statement",
    )  # fmt: skip
    with uow.read_only():
        owner, account = _wallet(uow, principal, settings, None if own else (phone, user_id))
        low, high = _bounds(where)
        currency = account.currency
        opening = Money(uow.movements.balance_before(account.id, low), currency)
        closing_balance = Money(uow.movements.balance_before(account.id, high), currency)
        totals = StatementTotals(opening)
        postings = uow.movements.count(account.id, low, high) if count else None

        def lines() -> Generator[Movement, None, None]:
            pages = uow.movements.batches(account.id, low=low, high=high, size=batch)
            with closing(pages):
                for page in pages:
                    found = lines_of_all(page.rows, page.parties)
                    totals.add_all(found)
                    yield from found
            totals.check(closing_balance)

        reading = lines()
        with closing(reading):  # a statement left half read stops reading before the snapshot ends
            yield Statement(
                owner, currency, start, end, opening, closing_balance, postings, reading, totals
            )


def _authorize(
    uow: UnitOfWork,
    clock: Clock,
    principal: Principal,
    settings: InstanceSettings,
    *,
    phone: str | None,
    user_id: str | None,
    action: str,
) -> bool:
    """Whether the wallet asked for is the principal's own, once they may read it."""
    if is_own(principal, settings, phone=phone, user_id=user_id):
        authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read a history")
        return True
    authorize(uow, clock, principal, Permission.READ_BOOKS, action)
    return False


def _wallet(
    uow: UnitOfWork,
    principal: Principal,
    settings: InstanceSettings,
    other: tuple[str | None, str | None] | None,
) -> tuple[Owner, Account]:
    """The wallet read: the principal's own, or `other` (phone, user id)'s."""
    if other is None:
        owner = Owner(principal.user_id, principal.phone, principal.display_name)
    else:
        user = other_person(uow, settings, phone=other[0], user_id=other[1])
        owner = Owner(user.id, user.phone, user.display_name)
    wallet = uow.ledger.by_code(wallet_account_code(owner.user_id))
    if wallet is None:  # pragma: no cover - registration opens the wallet with the user
        raise DataIntegrityError(f"user {owner.user_id} has no wallet")
    return owner, wallet


def _bounds(where: MovementFilter) -> tuple[int, int]:
    """The period [low, high) as posting times: microseconds since the epoch."""
    low = 0 if where.start is None else utc_micros(where.start)
    high = NO_END if where.end is None else utc_micros(where.end)
    return low, max(low, high)


def _normalized(where: MovementFilter, settings: InstanceSettings) -> MovementFilter:
    """A counterparty typed as a phone number is compared in E.164."""
    text = (where.counterparty or "").strip()
    if not text or not (text[0] == "+" or text[0].isdigit()):
        return where
    return MovementFilter(
        where.start, where.end, where.types, normalize_phone(text, settings.region),
        where.min_minor, where.max_minor,
    )  # fmt: skip
