"""Step-up authentication: money movements at or above a set amount need a fresh 2FA code.

Applies to people who turned 2FA on. The amount is an instance setting (`mwallet admin limits
step-up`), STEP_UP_DEFAULT_MAJOR units of the currency until an admin sets one. A code is checked
like a login's: counted before, used up inside the unit of work that moves the money (so a failed
movement leaves it usable), and five wrong ones lock the number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NoReturn, TypeVar

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.errors import InvalidSecondFactor, SecondFactorRequired, WalletError
from mwallet.core.services import two_factor
from mwallet.core.services.throttling import refuse_if_locked, release_attempt, reserve_attempt
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

STEP_UP_DEFAULT_MAJOR = 1000
T = TypeVar("T")


def threshold(settings: InstanceSettings) -> Money:
    if settings.step_up_minor is not None:
        return Money(settings.step_up_minor, settings.currency)
    return _default_threshold(settings.currency)


@lru_cache(maxsize=8)
def _default_threshold(currency: str) -> Money:
    # Asked on every transfer: parsed once per currency.
    return Money.parse(str(STEP_UP_DEFAULT_MAJOR), currency)


@dataclass(frozen=True, slots=True)
class StepUp:
    """A fresh code that a movement must use up before it may happen."""

    principal: Principal
    code: str
    started: datetime

    @classmethod
    def needed(
        cls,
        uow: UnitOfWork,
        clock: Clock,
        *,
        settings: InstanceSettings,
        principal: Principal,
        amount: Money,
        code: str | None,
    ) -> StepUp | None:
        """None when `amount` needs no code; else the step-up, its attempt already counted."""
        limit = threshold(settings)
        if amount.minor < limit.minor or not two_factor.is_on(uow, principal.user_id):
            return None
        if code is None:
            raise SecondFactorRequired(
                f"moving {limit.format()} or more needs a fresh two-factor code: give --code"
            )
        started = clock.now()
        reserve_attempt(uow, started, principal.phone)
        return cls(principal, code, started)

    def refuse_if_locked(self, uow: UnitOfWork, now: datetime) -> None:
        """First in the movement's unit of work (see `throttling.refuse_if_locked`)."""
        refuse_if_locked(uow, now, self.principal.phone)

    def check(self, uow: UnitOfWork, now: datetime, box: SecretBox) -> None:
        """Use the code up (InvalidSecondFactor if it is wrong or spent) and clear the count."""
        two_factor.check_code(uow, now, box, user_id=self.principal.user_id, code=self.code)
        uow.logins.clear(self.principal.phone)

    def release_in(self, uow: UnitOfWork) -> None:
        """Inside the movement's unit of work, when it needs no code after all (an idempotent
        replay of a movement that already happened): give the counted attempt back."""
        release_attempt(uow, self.principal.phone)

    def release(self, uow: UnitOfWork) -> None:
        """After the movement failed for another reason than the code (its rollback undid the
        code's use): give the counted attempt back, so only wrong codes add up to a lock."""
        with uow:
            release_attempt(uow, self.principal.phone)
            uow.commit()

    def refuse(self, uow: UnitOfWork) -> NoReturn:
        two_factor.refuse_attempt_code(uow, self.started, self.principal)


def guarded(uow: UnitOfWork, guard: StepUp | None, movement: Callable[[], T]) -> T:
    """Run a money movement that a step-up may guard: a wrong code is counted and refused; any
    other refusal gives the counted attempt back (only wrong codes add up to a lock)."""
    try:
        return movement()
    except InvalidSecondFactor:
        if guard is None:  # pragma: no cover - only a step-up raises it
            raise
        guard.refuse(uow)
    except WalletError:
        if guard is not None:
            guard.release(uow)
        raise
