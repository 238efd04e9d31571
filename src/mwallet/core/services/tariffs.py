"""Use cases of tariffs and limits: what admins set, what a user is quoted before confirming, and
the two steps every money movement takes inside its own unit of work — `fee_of` before it posts,
`enforce_limits` after (once the wallet's row is locked, so concurrent movements take turns)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.tariffs import (
    Allowance,
    Limit,
    LimitFamily,
    Movement,
    Period,
    Quote,
    Tariff,
    Terms,
    Tier,
    day_start,
    default_limit,
    month_start,
)
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    CurrencyMismatch,
    DataIntegrityError,
    LimitReached,
    UserNotFound,
    WithdrawalLimitReached,
)
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import UnitOfWork

# --- inside a movement's unit of work ---------------------------------------------------------


def terms_of(uow: UnitOfWork, user_id: str, movement: Movement, currency: str) -> Terms:
    """The tariff of `movement` and the user's tier and limit as stored now (one query), for a
    movement about to be made in this unit of work."""
    return _terms(movement, currency, *uow.tariffs.terms(user_id, movement))


def terms_later(
    uow: UnitOfWork, user_id: str, movement: Movement, currency: str
) -> Callable[[], Terms]:
    """`terms_of`, asked for later: the query may travel with the unit of work's next read."""
    read = uow.tariffs.terms_later(user_id, movement)
    return lambda: _terms(movement, currency, *read())


@lru_cache(maxsize=256)  # immutable values; every movement asks, mostly for the same
def _terms(
    movement: Movement, currency: str, tariff: Tariff | None, tier: Tier, stored: Limit | None
) -> Terms:
    limit = stored or default_limit(movement.family, tier, currency)
    return Terms(movement, tariff, tier, limit)


def enforce_limits(
    uow: UnitOfWork, terms: Terms, *, user_id: str, amount: Money, now: datetime
) -> None:
    """Refuse (LimitReached) if what the user has moved in the family today or this month, this
    movement included, passes their tier's limit. Call it after the movement is recorded and its
    wallet row locked: then the sums below see every movement committed before this one."""
    limit = terms.limit
    if limit.daily_minor is None and limit.monthly_minor is None:
        return  # the common case on the hot path: nothing to sum
    family = terms.movement.family
    for period, cap, start in (
        (Period.DAY, limit.daily_minor, day_start),
        (Period.MONTH, limit.monthly_minor, month_start),
    ):
        if cap is None:
            continue
        moved = uow.tariffs.moved_since(user_id, family, start(now))
        if moved > cap:
            left = Money(max(cap - (moved - amount.minor), 0), amount.currency)
            error = WithdrawalLimitReached if family is LimitFamily.WITHDRAWAL else LimitReached
            raise error(
                f"this would pass your {period.value} {family.noun} limit of "
                f"{Money(cap, amount.currency).format()} ({left.format()} left)"
            )


def _tier_of(uow: UnitOfWork, user_id: str) -> Tier:
    user = uow.users.by_id(user_id)
    if user is None:  # pragma: no cover - the caller's principal is a registered user
        raise UserNotFound(f"no user {user_id}")
    return user.tier


def _limit_of(uow: UnitOfWork, family: LimitFamily, tier: Tier, currency: str) -> Limit:
    return uow.tariffs.limit(family, tier) or default_limit(family, tier, currency)


# --- what a user reads --------------------------------------------------------------------------


def quote(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, movement: Movement, amount: Money
) -> Quote:
    """The fee of a movement and what is left of the user's limits, before they confirm it."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read fees and limits")
    now = clock.now()
    with uow.read_only():
        terms = terms_of(uow, principal.user_id, movement, amount.currency)
        allowances = _allowances(
            uow, principal.user_id, terms.tier, movement.family, currency=amount.currency, now=now
        )
    return Quote(movement, amount, terms.fee(amount), terms.tier, allowances)


def allowances(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, currency: str
) -> tuple[Tier, dict[LimitFamily, tuple[Allowance, ...]]]:
    """The user's tier and, per family, their limits with what is used and left."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read limits")
    now = clock.now()
    with uow.read_only():
        tier = _tier_of(uow, principal.user_id)
        return tier, {
            family: _allowances(uow, principal.user_id, tier, family, currency=currency, now=now)
            for family in LimitFamily
        }


def _allowances(
    uow: UnitOfWork, user_id: str, tier: Tier, family: LimitFamily, *, currency: str, now: datetime
) -> tuple[Allowance, ...]:
    limit = _limit_of(uow, family, tier, currency)
    return tuple(
        Allowance(
            period,
            None if cap is None else Money(cap, currency),
            Money(uow.tariffs.moved_since(user_id, family, since), currency),
        )
        for period, cap, since in (
            (Period.DAY, limit.daily_minor, day_start(now)),
            (Period.MONTH, limit.monthly_minor, month_start(now)),
        )
    )


def tariffs(uow: UnitOfWork, clock: Clock, *, principal: Principal) -> dict[Movement, Tariff]:
    """Every movement's tariff (free ones left out): the price list anyone may read."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read tariffs")
    with uow.read_only():
        return uow.tariffs.tariffs()


def limits(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, currency: str
) -> Sequence[Limit]:
    """Every family's limit per tier, as in force (what an admin set, or the default)."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read limits")
    with uow.read_only():
        return [_limit_of(uow, family, tier, currency) for family in LimitFamily for tier in Tier]


# --- what admins set ----------------------------------------------------------------------------


def set_tariff(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    movement: Movement,
    tariff: Tariff | None,
) -> Tariff | None:
    """Set (None: remove, the movement becomes free) the tariff of a movement, for movements
    from now on in every process."""
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "set tariffs")
    now = clock.now()
    with uow:
        currency = _currency(uow)
        checked = None if tariff is None else tariff.checked(currency)
        if checked is not None and checked.is_free:
            checked = None  # a free tariff is stored as none
        uow.tariffs.set_tariff(movement, checked, now)
        uow.audit.append(
            AuditEvent(
                "tariff.set", actor.user_id, None,
                {"movement": movement.value,
                 "rule": None if checked is None else checked.to_json()},
            ),
            now,
        )  # fmt: skip
        uow.commit()
    return checked


def set_limit(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    family: LimitFamily,
    tier: Tier,
    daily: Money | None = None,
    monthly: Money | None = None,
    unlimited: frozenset[Period] = frozenset(),
) -> Limit:
    """Change a family's limits for a tier: the amounts given are set, the periods in
    `unlimited` lose their limit, the rest stay. The limit afterwards."""
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "set limits")
    now = clock.now()
    with uow:
        currency = _currency(uow)
        for given in (daily, monthly):
            if given is not None and given.currency != currency:
                raise CurrencyMismatch(f"this wallet keeps its books in {currency}")
        current = _limit_of(uow, family, tier, currency)

        def pick(period: Period, given: Money | None, kept: int | None) -> int | None:
            if period in unlimited:
                return None
            return kept if given is None else given.minor

        changed = Limit(
            family, tier,
            pick(Period.DAY, daily, current.daily_minor),
            pick(Period.MONTH, monthly, current.monthly_minor),
        ).checked(currency)  # fmt: skip
        uow.tariffs.set_limit(changed)
        uow.audit.append(
            AuditEvent(
                "limit.set", actor.user_id, None,
                {"family": family.value, "tier": tier.value, "daily": changed.daily_minor,
                 "monthly": changed.monthly_minor},
            ),
            now,
        )  # fmt: skip
        uow.commit()
    return changed


def _currency(uow: UnitOfWork) -> str:
    settings = uow.instance.get()
    if settings is None:  # pragma: no cover - the wallet is initialised before anyone logs in
        raise DataIntegrityError("this wallet has no settings: run mwallet init")
    return settings.currency
