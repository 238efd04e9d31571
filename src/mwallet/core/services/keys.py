"""Use cases of keys: rotate the token signing key, publish the public keys, re-seal secrets
under a new data key, and set the step-up amount."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mwallet.core.clock import Clock
from mwallet.core.crypto import DataKeyStore, SecretBox
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.money import Money, check_movable
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.users import Principal
from mwallet.core.services import instance_secrets, tokens
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    kid: str
    created_at: datetime
    retired_at: datetime | None
    verifies: bool  # still accepted for verification


def rotate_signing_key(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, actor: Principal
) -> SigningKeyInfo:
    """A new key signs from now on; the old ones verify until their last token has expired."""
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "rotate signing keys")
    now = clock.now()
    with uow:
        key = tokens.new_signing_key(uow, now, box)
        uow.signing_keys.retire_others(key.kid, now)
        uow.audit.append(AuditEvent("signing_key.rotated", actor.user_id, key.kid), now)
        uow.commit()
    return SigningKeyInfo(key.kid, key.created_at, None, verifies=True)


def signing_keys(uow: UnitOfWork, clock: Clock, *, actor: Principal) -> list[SigningKeyInfo]:
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "list signing keys")
    now = clock.now()
    with uow.read_only():
        keys = uow.signing_keys.all()
    return [SigningKeyInfo(k.kid, k.created_at, k.retired_at, k.verifies_at(now)) for k in keys]


def jwks(uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """The public keys that verify access tokens now: public by nature, no principal needed."""
    with uow.read_only():
        keys = uow.signing_keys.all()
    return tokens.jwks(keys, clock.now())


def rotate_data_key(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, actor: Principal, store: DataKeyStore
) -> int:
    """Seal every stored secret under a new data key; the number re-sealed.

    The store makes the new key first (the old ones still open), everything is re-sealed in one
    transaction, then the store drops the old keys. Interrupted, it can simply be run again.
    """
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "rotate the data key")
    store.begin_rotation()
    count = _reseal(uow, clock, box, actor)
    store.finish_rotation()
    return count


def _reseal(uow: UnitOfWork, clock: Clock, box: SecretBox, actor: Principal) -> int:
    now = clock.now()
    count = 0
    with uow:
        for user_id, sealed in uow.two_factor.sealed_secrets():
            if not box.sealed_with_current_key(sealed):
                context = f"totp:{user_id}"
                uow.two_factor.reseal(
                    user_id, box.seal(box.open(sealed, context=context), context=context)
                )
                count += 1
        for key in uow.signing_keys.all():
            if not box.sealed_with_current_key(key.private_key_sealed):
                context = f"signing-key:{key.kid}"
                plain = box.open(key.private_key_sealed, context=context)
                uow.signing_keys.reseal(key.kid, box.seal(plain, context=context))
                count += 1
        count += instance_secrets.reseal_all(uow, box)
        uow.audit.append(
            AuditEvent("data_key.rotated", actor.user_id, box.current_key_id, {"resealed": count}),
            now,
        )
        uow.commit()
    return count


def set_step_up(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    amount: Money,
) -> Money:
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "set the step-up amount")
    check_movable(amount)
    if amount.currency != settings.currency:
        from mwallet.core.errors import CurrencyMismatch

        raise CurrencyMismatch(f"this wallet keeps its books in {settings.currency}")
    now = clock.now()
    with uow:
        uow.instance.set_step_up(amount.minor)
        uow.audit.append(
            AuditEvent("limits.step_up_set", actor.user_id, None, {"minor": amount.minor}), now
        )
        uow.commit()
    return amount
