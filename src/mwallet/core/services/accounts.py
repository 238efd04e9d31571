"""Use cases of the instance and its people: init, register, log in, change a password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    AccountKind,
    fees_account_code,
    funding_account_code,
    holds_account_code,
    wallet_account_code,
)
from mwallet.core.domain.money import currency_exponent, normalize_currency
from mwallet.core.domain.payments import (
    payable_account_code,
    sandbox_billers,
    sandbox_funding,
    sandbox_operators,
)
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.domain.transfers import (
    SANDBOX_SOURCE,
    IdempotencyRecord,
    check_idempotency_key,
    request_fingerprint,
)
from mwallet.core.domain.users import (
    Principal,
    User,
    check_display_name,
    check_email,
    check_password,
    check_region,
    normalize_phone,
)
from mwallet.core.errors import (
    AlreadyInitialized,
    InvalidSecondFactor,
    PermissionDenied,
    PhoneAlreadyRegistered,
    SecondFactorRequired,
    WeakPassword,
)
from mwallet.core.security import PasswordHasher, token_digest
from mwallet.core.services import tokens, two_factor
from mwallet.core.services.idempotency import claim_or_replay
from mwallet.core.services.throttling import accept_attempt, refuse_attempt, reserve_attempt
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


@dataclass(frozen=True, slots=True)
class LoginResult:
    tokens: TokenPair
    principal: Principal


def init_instance(
    uow: UnitOfWork, clock: Clock, *, currency: str | None, region: str | None
) -> tuple[InstanceSettings, bool]:
    """Set the instance's currency and phone region once; a second call with the same is a no-op.

    Returns the settings and whether this call created them.
    """
    wanted_currency = normalize_currency(currency) if currency is not None else None
    wanted_region = check_region(region) if region is not None else None
    with uow:
        existing = uow.instance.get()
        if existing is not None:
            if wanted_currency is not None and wanted_currency != existing.currency:
                raise AlreadyInitialized(
                    f"this wallet already keeps its books in {existing.currency}; "
                    f"it cannot switch to {wanted_currency}"
                )
            if wanted_region is not None and existing.region is None:
                # Stored numbers are E.164, so a region can still be added for typing ease.
                updated = InstanceSettings(currency=existing.currency, region=wanted_region)
                uow.instance.set_region(wanted_region)
                uow.commit()
                return updated, False
            if wanted_region is not None and wanted_region != existing.region:
                raise AlreadyInitialized(
                    f"this wallet's phone region is already {existing.region}; "
                    f"it cannot change to {wanted_region}"
                )
            return existing, False
        settings = InstanceSettings(currency=wanted_currency or "USD", region=wanted_region)
        uow.instance.put(settings)
        uow.ledger.open_account(
            code=funding_account_code(SANDBOX_SOURCE, settings.currency),
            kind=AccountKind.FUNDING,
            currency=settings.currency,
            owner_user_id=None,
            created_at=clock.now(),
        )
        exponent = currency_exponent(settings.currency)
        billers = [
            *sandbox_billers(settings.currency, exponent),
            *sandbox_operators(settings.currency, exponent),
        ]
        for biller in billers:
            uow.payments.add_biller(biller, clock.now())
        sources = sandbox_funding(settings.currency, exponent)
        for source in sources:
            uow.payments.add_biller(source, clock.now())
        for code, kind in (
            (holds_account_code(settings.currency), AccountKind.HOLD),
            (fees_account_code(settings.currency), AccountKind.FEES),
            *((payable_account_code(biller.id), AccountKind.PAYABLE) for biller in billers),
            *((funding_account_code(one.id, settings.currency), AccountKind.FUNDING)
              for one in sources),
        ):  # fmt: skip
            uow.ledger.open_account(
                code=code,
                kind=kind,
                currency=settings.currency,
                owner_user_id=None,
                created_at=clock.now(),
            )
        uow.commit()
        return settings, True


def find_settings(uow: UnitOfWork) -> InstanceSettings | None:
    with uow.read_only():
        return uow.instance.get()


def register(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    *,
    settings: InstanceSettings,
    phone: str,
    display_name: str,
    email: str | None,
    password: str,
    idempotency_key: str,
) -> User:
    """Open a user and their wallet in the instance's currency."""
    key = check_idempotency_key(idempotency_key)
    e164 = normalize_phone(phone, settings.region)
    name = check_display_name(display_name)
    mail = check_email(email)
    check_password(password, phone=e164)
    fingerprint = request_fingerprint("register", phone=e164, name=name, email=mail)
    scope = f"register:{e164}"
    # Hash before the write transaction: argon2 is slow on purpose and must not hold the lock.
    password_hash = hasher.hash(password)
    with uow:
        now = clock.now()
        user = User(new_id(now), e164, name, mail, now)
        claim = IdempotencyRecord("register", fingerprint, user.id)
        if (earlier := claim_or_replay(
            uow, scope=scope, key=key, claim=claim, now=now, load=uow.users.by_id
        )) is not None:  # fmt: skip
            return earlier
        if uow.users.by_phone(e164) is not None:
            raise PhoneAlreadyRegistered(f"{e164} already has a wallet")
        uow.users.add(user, password_hash)
        uow.ledger.open_account(
            code=wallet_account_code(user.id),
            kind=AccountKind.WALLET,
            currency=settings.currency,
            owner_user_id=user.id,
            created_at=now,
        )
        uow.outbox.add(events.user_registered(new_id(now), user_id=user.id, phone=e164), now)
        uow.audit.append(AuditEvent("user.registered", user.id, e164), now)
        uow.commit()
        return user


def login(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    box: SecretBox,
    *,
    settings: InstanceSettings,
    phone: str,
    password: str,
    code: str | None = None,
    device: str | None = None,
) -> LoginResult:
    """Check a phone and password (and the 2FA code, when 2FA is on) and open a session.

    `device`: an id the client keeps for the device it runs on; a login from a device not seen
    before, by someone who has logged in from another one, is a security notice to its owner.

    One error for an unknown phone and a wrong password. Five failures in a row (passwords and
    codes alike) lock the phone number for 30 minutes, on every door, even for the right password
    (`core.services.throttling`). Every outcome is audited. With 2FA on and no code, the answer is
    SecondFactorRequired; the attempt stays counted until a complete login clears it.
    """
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    reserve_attempt(uow, now, e164)
    with uow.read_only():
        user = uow.users.by_phone(e164)
        stored_hash = uow.users.password_hash(user.id) if user is not None else None
    actor = user.id if user is not None else None
    if user is None or stored_hash is None:
        hasher.hash(password)  # spend the same time as a real check: no timing oracle
        refuse_attempt(uow, now, e164, actor)
    if not hasher.verify(stored_hash, password):
        refuse_attempt(uow, now, e164, actor)
    if code is None and two_factor.is_on(uow, user.id):
        raise SecondFactorRequired("two-factor authentication is on: enter the code")
    # A stronger hash for an old one is computed before the write lock is taken: argon2 is slow.
    rehashed = hasher.hash(password) if hasher.needs_rehash(stored_hash) else None
    try:
        with uow:
            accept_attempt(uow, now, e164)
            if two_factor.is_on_in(uow, user.id):  # again, under the lock: it may just have changed
                if code is None:
                    raise SecondFactorRequired("two-factor authentication is on: enter the code")
                two_factor.check_code(uow, now, box, user_id=user.id, code=code)
            if rehashed is not None:
                uow.users.set_password_hash(user.id, rehashed)
            pair = tokens.issue_login_tokens(uow, now, box, user)
            uow.audit.append(AuditEvent("login.succeeded", user.id, e164), now)
            if device:
                remember_device(uow, now, user.id, device)
            uow.commit()
    except InvalidSecondFactor:
        refuse_attempt(
            uow,
            now,
            e164,
            actor,
            two_factor.WRONG_CODE,
            error=InvalidSecondFactor,
            reason="second_factor",
        )
    return LoginResult(pair, Principal(user.id, user.phone, user.display_name, user.role))


def remember_device(uow: UnitOfWork, now: datetime, user_id: str, device: str) -> None:
    """Inside the caller's unit of work: `device` is known to `user_id` from now on; a new one,
    for someone who has logged in from another before, is audited and a security notice (a
    password login, or a device grant's tokens: every way in says the same)."""
    new, known_before = uow.devices.remember(user_id, token_digest(device.strip()[:200]), now)
    if new and known_before:
        uow.audit.append(AuditEvent("login.new_device", user_id, None), now)
        uow.outbox.add(events.login_from_new_device(new_id(now), user_id=user_id, at=now), now)


def change_password(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    *,
    principal: Principal,
    current: str,
    new: str,
) -> None:
    """Replace the password after checking the current one; every session ends with it.

    A wrong current password counts as a failed login: guessing it here locks the number too.
    """
    if principal.client:
        raise PermissionDenied("clients have no password: they authenticate with their secret")
    check_password(new, phone=principal.phone)
    if new == current:
        raise WeakPassword("the new password must differ from the current one")
    now = clock.now()
    reserve_attempt(uow, now, principal.phone)
    with uow.read_only():
        stored_hash = uow.users.password_hash(principal.user_id)
    if not hasher.verify(stored_hash, current):
        refuse_attempt(
            uow, now, principal.phone, principal.user_id, "the current password is wrong"
        )
    new_hash = hasher.hash(new)  # before the write lock: argon2 is slow on purpose
    with uow:
        accept_attempt(uow, now, principal.phone)
        uow.users.set_password_hash(principal.user_id, new_hash)
        uow.tokens.revoke_families_of(principal.user_id, now, "password_changed")
        uow.audit.append(AuditEvent("password.changed", principal.user_id, principal.phone), now)
        uow.outbox.add(
            events.password_changed(new_id(now), user_id=principal.user_id, phone=principal.phone),
            now,
        )
        uow.commit()
