"""Use cases of the device authorization grant (RFC 8628): a device asks, the person answers on
the verification page with their phone and password (and 2FA code), the device polls for its
tokens. The rules are in `core.domain.device_grants`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.device_grants import (
    INTERVAL_SECONDS,
    LIFETIME,
    DeviceGrant,
    GrantState,
    Verdict,
    format_user_code,
    new_device_code,
    new_user_code,
    parse_user_code,
)
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.errors import (
    AuthorizationPending,
    ConcurrencyConflict,
    DeviceAccessDenied,
    DeviceCodeExpired,
    InvalidInput,
    InvalidToken,
    SlowDown,
    WalletError,
)
from mwallet.core.security import PasswordHasher, token_digest
from mwallet.core.services import accounts, tokens
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

_REFUSALS: dict[Verdict, WalletError] = {
    Verdict.AUTHORIZATION_PENDING: AuthorizationPending(
        "waiting for you to approve this device on the verification page"
    ),
    Verdict.SLOW_DOWN: SlowDown("polling too fast: wait longer between polls"),
    Verdict.ACCESS_DENIED: DeviceAccessDenied("the login was refused on the verification page"),
    Verdict.EXPIRED_TOKEN: DeviceCodeExpired("the device code has expired: log in again"),
    Verdict.USED: InvalidToken("that device code was used already: log in again"),
}


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """What the device is told (RFC 8628 §3.2); the door that serves the verification page
    knows its address."""

    device_code: str  # the device's secret: shown to it once, stored as a digest
    user_code: str  # as people read it: BCDF-GHJK
    expires_at: datetime
    interval: int
    verification_uri: str | None = None
    verification_uri_complete: str | None = None


def start(
    uow: UnitOfWork, clock: Clock, *, interval: int = INTERVAL_SECONDS
) -> DeviceAuthorization:
    now = clock.now()
    device_code = new_device_code()
    with uow:
        user_code = new_user_code()
        while uow.device_grants.live_by_user_code(user_code, now) is not None:  # pragma: no cover
            user_code = new_user_code()  # one in 20^8 per live grant: all but never
        grant = DeviceGrant(new_id(now), user_code, GrantState.PENDING, now, now + LIFETIME,
                            interval)  # fmt: skip
        uow.device_grants.add(grant, token_digest(device_code))
        uow.commit()
    return DeviceAuthorization(device_code, format_user_code(user_code), grant.expires_at,
                               interval)  # fmt: skip


def decide(
    uow: UnitOfWork, clock: Clock, hasher: PasswordHasher, box: SecretBox, *,
    settings: InstanceSettings, user_code: str, phone: str, password: str, code: str | None,
    approve: bool,
) -> DeviceGrant:  # fmt: skip
    """The person's answer, given with their credentials: checked exactly as a login is (the
    same lock after failed attempts, the same second factor), but opening no session of its own."""
    wanted = parse_user_code(user_code)
    with uow.read_only():
        grant = uow.device_grants.live_by_user_code(wanted, clock.now())
    if grant is None:
        raise InvalidInput("that code is unknown or has expired: ask the device for a new one")
    checked = accounts.login(uow, clock, hasher, box, settings=settings, phone=phone,
                             password=password, code=code)  # fmt: skip
    now = clock.now()
    with uow:
        if checked.tokens.family_id is not None:  # the page's own login is no session
            uow.tokens.revoke_family(checked.tokens.family_id, now, "device_page")
        decided = grant.decided(now, user_id=checked.principal.user_id, approve=approve)
        if not uow.device_grants.save(decided, was=GrantState.PENDING):
            raise InvalidInput("that code has expired or was used: ask the device for a new one")
        action = "device.approved" if approve else "device.denied"
        uow.audit.append(AuditEvent(action, decided.user_id, None, {"grant": grant.id}), now)
        uow.commit()
    return decided


def poll(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, device_code: str, device: str | None = None
) -> TokenPair:
    """The device's poll: its tokens once the person approved, else RFC 8628's error.

    `device`: the id the client keeps for the device it runs on, as a password login sends it;
    the poll that gets the tokens is the login, so a device new to the person is a security
    notice here too (`accounts.remember_device`)."""
    now = clock.now()
    pair: TokenPair | None = None
    with uow:
        grant = uow.device_grants.by_device_digest(token_digest(device_code))
        if grant is None:
            raise InvalidToken("that device code is not one this wallet issued")
        kept, verdict = grant.polled(now)
        if kept != grant and not uow.device_grants.save(kept, was=grant.state):
            raise ConcurrencyConflict("another poll of this device code came first")
        if verdict is Verdict.ISSUE:
            user = uow.users.by_id(kept.user_id or "")
            if user is None:  # pragma: no cover - users are never deleted
                raise InvalidToken("that device code is not one this wallet issued")
            pair = tokens.issue_login_tokens(uow, now, box, user)
            uow.audit.append(
                AuditEvent("login.device_grant", user.id, user.phone, {"grant": grant.id}), now
            )
            if device:
                accounts.remember_device(uow, now, user.id, device)
        uow.commit()
    if pair is None:
        raise _REFUSALS[verdict]
    return pair
