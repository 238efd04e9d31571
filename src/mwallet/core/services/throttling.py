"""Counting failed secret checks against a phone number: passwords and two-factor codes alike.

Every check of a guessable secret (a password, a 6-digit code) follows one protocol, so five wrong
guesses of either lock the number for 30 minutes on every door (`core.domain.lockout`):

1. `reserve_attempt` in its own unit of work, before the check: refused while locked;
2. on success, `accept_attempt` inside the unit of work that acts on it (clears the count);
3. on failure, `refuse_attempt`: confirms the failure, audits it, locks at the fifth, raises.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.lockout import LOCK_DURATION, LoginThrottle
from mwallet.core.errors import AccountLocked, InvalidCredentials, NotAuthenticated
from mwallet.core.services.unit_of_work import UnitOfWork


def reserve_attempt(uow: UnitOfWork, now: datetime, phone: str) -> None:
    """Count this password check before it runs, or refuse it while the number is locked."""
    with uow:
        throttle = uow.logins.get_for_update(phone)
        reserved = throttle.reserve(now)
        if reserved is None:
            _note_refusal(uow, now, phone, throttle)
        uow.logins.save(phone, reserved)
        uow.commit()


def accept_attempt(uow: UnitOfWork, now: datetime, phone: str) -> None:
    """In the unit of work that lets the user in: clear the count, unless other failures locked
    the number while this password was being checked (then refuse, and keep nothing else)."""
    refuse_if_locked(uow, now, phone)
    uow.logins.clear(phone)


def release_attempt(uow: UnitOfWork, phone: str) -> None:
    """Inside a writing unit of work: give back this request's reserved attempt."""
    uow.logins.save(phone, uow.logins.get_for_update(phone).release())


def refuse_if_locked(uow: UnitOfWork, now: datetime, phone: str) -> None:
    """First in a unit of work: refuse (committing only the refusal) if the number got locked;
    `uow.logins.clear(phone)` later, once the secret checked out, finishes `accept_attempt`."""
    throttle = uow.logins.get_for_update(phone)
    if throttle.locked_at(now):
        _note_refusal(uow, now, phone, throttle)


def _note_refusal(uow: UnitOfWork, now: datetime, phone: str, throttle: LoginThrottle) -> NoReturn:
    """Record a refusal of a locked number, commit only that, and refuse."""
    if throttle.refusals == 0:  # on record once per lock, so refusals cannot flood the log
        uow.audit.append(AuditEvent("login.refused_locked", None, phone), now)
    refused = throttle.refused(now)
    uow.logins.save(phone, refused)
    uow.commit()
    raise AccountLocked(_locked_message(refused))


def refuse_attempt(
    uow: UnitOfWork,
    now: datetime,
    phone: str,
    actor: str | None,
    message: str = "wrong phone number or password",
    *,
    error: type[NotAuthenticated] = InvalidCredentials,
    reason: str = "password",
) -> NoReturn:
    """Confirm a failed check (locking the number at the fifth), audit it, and refuse it."""
    with uow:
        before = uow.logins.get_for_update(phone)
        after = before.confirm_failure(now)
        uow.logins.save(phone, after)
        uow.audit.append(
            AuditEvent(
                "login.failed", actor, phone, {"failures": after.failures, "reason": reason}
            ),
            now,
        )
        locked_now = after.locked_at(now) and not before.locked_at(now)
        if locked_now:
            uow.audit.append(
                AuditEvent(
                    "login.locked",
                    actor,
                    phone,
                    {"minutes": LOCK_DURATION // timedelta(minutes=1)},
                ),
                now,
            )
            person = uow.users.by_phone(phone)
            if person is not None and after.locked_until is not None:  # the owner is told
                uow.outbox.add(
                    events.login_locked(new_id(now), user_id=person.id, until=after.locked_until),
                    now,
                )
        uow.commit()
    if locked_now:
        raise AccountLocked(_locked_message(after))
    raise error(message)


def _locked_message(throttle: LoginThrottle) -> str:
    until = throttle.locked_until.strftime("%H:%M UTC") if throttle.locked_until else "later"
    return f"too many failed logins for this number: try again after {until}"
