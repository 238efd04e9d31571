"""Use cases of the instance and its people: init, register, login, logout, authenticate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from mwallet.core.clock import Clock
from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import AccountKind, funding_account_code, wallet_account_code
from mwallet.core.domain.lockout import LOCK_DURATION, LoginThrottle
from mwallet.core.domain.money import normalize_currency
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
    AccountLocked,
    AlreadyInitialized,
    InvalidCredentials,
    PhoneAlreadyRegistered,
    SessionExpired,
    WeakPassword,
)
from mwallet.core.security import PasswordHasher, new_session_token, token_digest
from mwallet.core.services.idempotency import claim_or_replay
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

SESSION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    principal: Principal
    expires_at: datetime


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
    *,
    settings: InstanceSettings,
    phone: str,
    password: str,
) -> LoginResult:
    """Check a phone and password and open a session.

    One error for an unknown phone and a wrong password. Five failures in a row lock the phone
    number for 30 minutes, on every door, even for the right password (`core.domain.lockout`).
    Every outcome is audited.
    """
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    _reserve_attempt(uow, now, e164)
    with uow.read_only():
        user = uow.users.by_phone(e164)
        stored_hash = uow.users.password_hash(user.id) if user is not None else None
    actor = user.id if user is not None else None
    if user is None or stored_hash is None:
        hasher.hash(password)  # spend the same time as a real check: no timing oracle
        _refuse_attempt(uow, now, e164, actor)
    if not hasher.verify(stored_hash, password):
        _refuse_attempt(uow, now, e164, actor)
    token = new_session_token()
    expires_at = now + SESSION_LIFETIME
    # A stronger hash for an old one is computed before the write lock is taken: argon2 is slow.
    rehashed = hasher.hash(password) if hasher.needs_rehash(stored_hash) else None
    with uow:
        _accept_attempt(uow, now, e164)
        if rehashed is not None:
            uow.users.set_password_hash(user.id, rehashed)
        uow.sessions.add(token_digest(token), user.id, now, expires_at)
        uow.audit.append(AuditEvent("login.succeeded", user.id, e164), now)
        uow.commit()
    return LoginResult(
        token, Principal(user.id, user.phone, user.display_name, user.role), expires_at
    )


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
    check_password(new, phone=principal.phone)
    if new == current:
        raise WeakPassword("the new password must differ from the current one")
    now = clock.now()
    _reserve_attempt(uow, now, principal.phone)
    with uow.read_only():
        stored_hash = uow.users.password_hash(principal.user_id)
    if not hasher.verify(stored_hash, current):
        _refuse_attempt(
            uow, now, principal.phone, principal.user_id, "the current password is wrong"
        )
    new_hash = hasher.hash(new)  # before the write lock: argon2 is slow on purpose
    with uow:
        _accept_attempt(uow, now, principal.phone)
        uow.users.set_password_hash(principal.user_id, new_hash)
        uow.sessions.revoke_all(principal.user_id, now)
        uow.audit.append(AuditEvent("password.changed", principal.user_id, principal.phone), now)
        uow.outbox.add(
            events.password_changed(new_id(now), user_id=principal.user_id, phone=principal.phone),
            now,
        )
        uow.commit()


def _reserve_attempt(uow: UnitOfWork, now: datetime, phone: str) -> None:
    """Count this password check before it runs, or refuse it while the number is locked."""
    with uow:
        throttle = uow.logins.get_for_update(phone)
        reserved = throttle.reserve(now)
        if reserved is None:
            _note_refusal(uow, now, phone, throttle)
        uow.logins.save(phone, reserved)
        uow.commit()


def _accept_attempt(uow: UnitOfWork, now: datetime, phone: str) -> None:
    """In the unit of work that lets the user in: clear the count, unless other failures locked
    the number while this password was being checked (then refuse, and keep nothing else)."""
    throttle = uow.logins.get_for_update(phone)
    if throttle.locked_at(now):
        _note_refusal(uow, now, phone, throttle)
    uow.logins.clear(phone)


def _note_refusal(uow: UnitOfWork, now: datetime, phone: str, throttle: LoginThrottle) -> NoReturn:
    """Record a refusal of a locked number, commit only that, and refuse."""
    if throttle.refusals == 0:  # on record once per lock, so refusals cannot flood the log
        uow.audit.append(AuditEvent("login.refused_locked", None, phone), now)
    refused = throttle.refused(now)
    uow.logins.save(phone, refused)
    uow.commit()
    raise AccountLocked(_locked_message(refused))


def _refuse_attempt(
    uow: UnitOfWork,
    now: datetime,
    phone: str,
    actor: str | None,
    message: str = "wrong phone number or password",
) -> NoReturn:
    """Confirm a failed check (locking the number at the fifth), audit it, and refuse it."""
    with uow:
        before = uow.logins.get_for_update(phone)
        after = before.confirm_failure(now)
        uow.logins.save(phone, after)
        uow.audit.append(
            AuditEvent("login.failed", actor, phone, {"failures": after.failures}), now
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
        uow.commit()
    if locked_now:
        raise AccountLocked(_locked_message(after))
    raise InvalidCredentials(message)


def _locked_message(throttle: LoginThrottle) -> str:
    until = throttle.locked_until.strftime("%H:%M UTC") if throttle.locked_until else "later"
    return f"too many failed logins for this number: try again after {until}"


def logout(uow: UnitOfWork, clock: Clock, *, token: str) -> None:
    now = clock.now()
    with uow:
        # Only the call that actually ends the session records it: two logouts racing, one record.
        if (user_id := uow.sessions.revoke(token_digest(token), now)) is not None:
            uow.audit.append(AuditEvent("logout", user_id), now)
        uow.commit()


def authenticate(uow: UnitOfWork, clock: Clock, *, token: str) -> Principal:
    """The principal a session token stands for, or NotAuthenticated."""
    with uow.read_only():
        session = uow.sessions.get(token_digest(token))
        user = uow.users.by_id(session.user_id) if session is not None else None
    if session is None or user is None or session.revoked:
        raise SessionExpired("you are not logged in: run `mwallet login`")
    if session.expires_at <= clock.now():
        raise SessionExpired("your session has expired: run `mwallet login` again")
    return Principal(user.id, user.phone, user.display_name, user.role)
