"""Use cases of statistics and operators' reports: read-only aggregates over the ledger.

A person reads their own statistics; an admin or an auditor (`read_books`) anyone's, and the
operators' reports. Each report is read in one read-only transaction (on PostgreSQL a REPEATABLE
READ snapshot), so its numbers agree with each other while money moves.
"""

from __future__ import annotations

from dataclasses import replace

from mwallet.core.clock import Clock
from mwallet.core.domain.admin_reports import (
    ActiveDay,
    ActiveUsers,
    FeesReport,
    HoldsReport,
    ProductDay,
    TerminalCash,
    TrialBalance,
    VolumeReport,
)
from mwallet.core.domain.ledger import AccountKind, wallet_account_code
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.statistics import (
    TOP,
    Bucket,
    Period,
    UsageStats,
    buckets,
    check_days,
    days,
    product_of,
    summarize,
    top_billers,
)
from mwallet.core.domain.users import Principal
from mwallet.core.errors import UserNotFound
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork
from mwallet.core.services.whose import is_own, other_person


def usage(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    period: Period,
    months: int,
    phone: str | None = None,
    user_id: str | None = None,
) -> UsageStats:
    """The statistics of the actor's wallet, or (for `read_books`) of the wallet of the person
    with this `phone` or `user_id`."""
    spans = buckets(clock.now(), period, months)  # checks `months` before anything is read
    own = is_own(actor, settings, phone=phone, user_id=user_id)
    if own:
        authorize(uow, clock, actor, Permission.USE_OWN_WALLET, "read wallet statistics")
    else:
        authorize(uow, clock, actor, Permission.READ_BOOKS, "read another person's statistics")
    now = clock.now()
    with uow.read_only():
        if own:
            user = uow.users.by_id(actor.user_id)
            if user is None:
                raise UserNotFound(f"no user is registered to {actor.phone}")
        else:
            user = other_person(uow, settings, phone=phone, user_id=user_id)
        wallet = uow.ledger.by_code(wallet_account_code(user.id))
        if wallet is None:  # pragma: no cover - registration opens the wallet with the user
            raise UserNotFound(f"{user.phone} has no wallet")
        groups, counterparties = uow.stats.usage(wallet.id, spans, TOP)
    return UsageStats(
        user_id=user.id, phone=user.phone, name=user.display_name, currency=wallet.currency,
        period=period, periods=summarize(groups, spans), counterparties=tuple(counterparties),
        billers=top_billers(groups, TOP), balance=wallet.balance, generated_at=now,
    )  # fmt: skip


def volumes(uow: UnitOfWork, clock: Clock, *, actor: Principal, days_back: int) -> VolumeReport:
    """Movements settled per product and day over the last `days_back` days (today included)."""
    check_days(days_back)
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the operators' reports")
    spans = days(clock.now(), days_back)
    with uow.read_only():
        rows = uow.stats.volumes(spans[0].start, spans[-1].end)
    return VolumeReport(spans, _product_days(rows, spans))


def _product_days(
    rows: list[tuple[int, str, str | None, str, int, int, int]], spans: tuple[Bucket, ...]
) -> tuple[ProductDay, ...]:
    merged: dict[tuple[int, str, str], tuple[int, int, int]] = {}
    for day, kind, payment_product, currency, count, volume, fees in rows:
        product = product_of(kind, payment_product)
        if product is None or not 0 <= day < len(spans):
            continue
        before = merged.get((day, product, currency), (0, 0, 0))
        merged[(day, product, currency)] = (
            before[0] + count,
            before[1] + volume,
            before[2] + fees,
        )
    return tuple(
        ProductDay(spans[day].label, product, currency, *numbers)
        for (day, product, currency), numbers in sorted(merged.items())
    )


def active_users(uow: UnitOfWork, clock: Clock, *, actor: Principal, days_back: int) -> ActiveUsers:
    """Wallets that moved money (returned holds aside) per day, and over the whole window."""
    check_days(days_back)
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the operators' reports")
    spans = days(clock.now(), days_back)
    with uow.read_only():
        per_day, window = uow.stats.active_users(spans[0].start, spans[-1].end)
        registered = uow.stats.wallets()
    return ActiveUsers(
        tuple(ActiveDay(span.label, per_day.get(index, 0)) for index, span in enumerate(spans)),
        window,
        registered,
    )


def fees(uow: UnitOfWork, clock: Clock, *, actor: Principal, days_back: int) -> FeesReport:
    """Fees earned per product and day, and what the fees accounts hold (all time)."""
    check_days(days_back)
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the operators' reports")
    spans = days(clock.now(), days_back)
    with uow.read_only():
        rows = uow.stats.volumes(spans[0].start, spans[-1].end)
        balances = uow.stats.balances_of_kind(AccountKind.FEES)
    earned = tuple(row for row in _product_days(rows, spans) if row.fees)
    return FeesReport(VolumeReport(spans, earned), balances)


def cash_flows(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, settings: InstanceSettings,
    days_back: int,
) -> tuple[tuple[TerminalCash, ...], str, str]:  # fmt: skip
    """Per terminal: cash paid out and taken in over the window, its float or cash now; and the
    window's first and last day.

    A terminal without an account (a row a restore or a script left without its `cash:` account)
    has no currency of its own: its amounts (nothing moved, and the notes in its cassettes) are
    in the instance's currency, the one its account is opened in and its notes are loaded in."""
    check_days(days_back)
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the operators' reports")
    spans = days(clock.now(), days_back)
    with uow.read_only():
        found = uow.stats.cash_flows(spans[0].start, spans[-1].end)
    terminals = tuple(
        one if one.currency else replace(one, currency=settings.currency) for one in found
    )
    return terminals, spans[0].label, spans[-1].label


def holds(uow: UnitOfWork, clock: Clock, *, actor: Principal, limit: int) -> HoldsReport:
    """Money held now: withdrawals not yet settled, pending or unknown payments; and
    whether the holds accounts hold exactly that."""
    check_limit(limit)
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the operators' reports")
    with uow.read_only():
        listed, count, held = uow.stats.outstanding_holds(limit)
        accounts = uow.stats.balances_of_kind(AccountKind.HOLD)
    return HoldsReport(tuple(listed), count, held, accounts)


def trial_balance(uow: UnitOfWork, clock: Clock, *, actor: Principal) -> TrialBalance:
    """Every account's balance, read in the same snapshot as `verify`, which proves them from the
    postings."""
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the trial balance")
    now = clock.now()
    with uow.read_only():
        lines = uow.stats.accounts()
        verification = uow.ledger.verify(now)
    return TrialBalance(tuple(lines), verification, now)
