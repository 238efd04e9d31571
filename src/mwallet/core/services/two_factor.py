"""Use cases of two-factor authentication: enrol, confirm, turn off, and check a code.

Enrolment is two steps: `begin` makes a secret (sealed with the data key) and shows it once as a
provisioning URI; `confirm` turns 2FA on with a first code from the authenticator and hands out
10 recovery codes, shown once and kept as digests. A code is a 6-digit TOTP (never one of an
already used time-step) or an unused recovery code. Wrong codes count toward the same lock as
wrong passwords (`core.services.throttling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from mwallet.core import otp
from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    InvalidSecondFactor,
    PermissionDenied,
    TwoFactorAlreadyOn,
    TwoFactorNotOn,
)
from mwallet.core.services.throttling import accept_attempt, refuse_attempt, reserve_attempt
from mwallet.core.services.unit_of_work import UnitOfWork

WRONG_CODE = "wrong or already used two-factor code"


@dataclass(frozen=True, slots=True)
class Enrollment:
    secret: str  # base32, for typing into an authenticator by hand
    uri: str  # otpauth://totp/…, for the QR code


@dataclass(frozen=True, slots=True)
class TwoFactorStatus:
    enabled: bool
    pending: bool
    recovery_codes_left: int


def begin(uow: UnitOfWork, clock: Clock, box: SecretBox, *, principal: Principal) -> Enrollment:
    _person(principal)
    now = clock.now()
    secret = otp.new_secret()
    with uow:
        found = uow.two_factor.get(principal.user_id)
        if found is not None and found.confirmed:
            raise TwoFactorAlreadyOn(
                "two-factor authentication is already on: turn it off first (`mwallet 2fa disable`)"
            )
        sealed = box.seal(secret.encode(), context=_context(principal.user_id))
        uow.two_factor.start(principal.user_id, sealed, now)
        uow.commit()
    return Enrollment(secret, otp.provisioning_uri(secret, account=principal.phone))


def confirm(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, principal: Principal, code: str
) -> list[str]:
    """Turn 2FA on with a first code; the recovery codes, to be shown once."""
    _person(principal)
    now = clock.now()
    with uow.read_only():
        found = uow.two_factor.get(principal.user_id)
    if found is None:
        raise TwoFactorNotOn("no enrolment is waiting: run `mwallet 2fa enable` first")
    if found.confirmed:
        raise TwoFactorAlreadyOn("two-factor authentication is already on")
    secret = box.open(found.secret_sealed, context=_context(principal.user_id)).decode()
    step = otp.matching_step(secret, code, now=now, after_step=None)
    if step is None:
        raise InvalidSecondFactor(
            "that is not the code your authenticator shows now: check its clock and try again"
        )
    codes = otp.new_recovery_codes()
    with uow:
        if not uow.two_factor.confirm(principal.user_id, now):
            raise TwoFactorAlreadyOn("two-factor authentication was turned on meanwhile")
        uow.two_factor.accept_step(principal.user_id, step)
        uow.two_factor.add_recovery_codes(
            principal.user_id, [otp.recovery_digest(one) for one in codes]
        )
        uow.audit.append(AuditEvent("2fa.enabled", principal.user_id, principal.phone), now)
        uow.outbox.add(
            events.two_factor_changed(new_id(now), user_id=principal.user_id, enabled=True), now
        )
        uow.commit()
    return codes


def disable(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, principal: Principal, code: str
) -> None:
    """Turn 2FA off; it takes a current code or a recovery code."""
    _person(principal)
    now = clock.now()
    if not is_on(uow, principal.user_id):
        raise TwoFactorNotOn("two-factor authentication is not on")
    reserve_attempt(uow, now, principal.phone)
    try:
        with uow:
            accept_attempt(uow, now, principal.phone)
            check_code(uow, now, box, user_id=principal.user_id, code=code)
            uow.two_factor.remove(principal.user_id)
            uow.audit.append(AuditEvent("2fa.disabled", principal.user_id, principal.phone), now)
            uow.outbox.add(
                events.two_factor_changed(new_id(now), user_id=principal.user_id, enabled=False),
                now,
            )
            uow.commit()
    except InvalidSecondFactor:
        refuse_attempt_code(uow, now, principal)


def status(uow: UnitOfWork, *, principal: Principal) -> TwoFactorStatus:
    with uow.read_only():
        found = uow.two_factor.get(principal.user_id)
        left = uow.two_factor.unused_recovery_codes(principal.user_id) if found else 0
    return TwoFactorStatus(
        enabled=found is not None and found.confirmed,
        pending=found is not None and not found.confirmed,
        recovery_codes_left=left,
    )


def is_on(uow: UnitOfWork, user_id: str) -> bool:
    with uow.read_only():
        found = uow.two_factor.get(user_id)
    return found is not None and found.confirmed


def check_code(uow: UnitOfWork, now: datetime, box: SecretBox, *, user_id: str, code: str) -> str:
    """Inside a writing unit of work: use up `code` (a TOTP step or a recovery code) and say
    which it was, or raise InvalidSecondFactor. Rolled back, the code stays usable."""
    found = uow.two_factor.get(user_id)
    if found is None or not found.confirmed:
        raise InvalidSecondFactor("two-factor authentication is not on")
    if otp.looks_like_recovery_code(code):
        if uow.two_factor.spend_recovery_code(user_id, otp.recovery_digest(code), now):
            left = uow.two_factor.unused_recovery_codes(user_id)
            uow.audit.append(
                AuditEvent("2fa.recovery_code_used", user_id, None, {"left": left}), now
            )
            return "recovery"
        raise InvalidSecondFactor(WRONG_CODE)
    secret = box.open(found.secret_sealed, context=_context(user_id)).decode()
    step = otp.matching_step(secret, code, now=now, after_step=found.last_step)
    if step is None or not uow.two_factor.accept_step(user_id, step):
        raise InvalidSecondFactor(WRONG_CODE)
    return "totp"


def refuse_attempt_code(uow: UnitOfWork, now: datetime, principal: Principal) -> NoReturn:
    refuse_attempt(
        uow,
        now,
        principal.phone,
        principal.user_id,
        WRONG_CODE,
        error=InvalidSecondFactor,
        reason="second_factor",
    )


def _person(principal: Principal) -> None:
    if principal.client:
        raise PermissionDenied("clients do not use two-factor codes")


def _context(user_id: str) -> str:
    return f"totp:{user_id}"


def is_on_in(uow: UnitOfWork, user_id: str) -> bool:
    """`is_on`, inside a unit of work the caller holds open."""
    found = uow.two_factor.get(user_id)
    return found is not None and found.confirmed
