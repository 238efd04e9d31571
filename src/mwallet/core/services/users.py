"""Use cases of user administration: list and show users, give roles, and the first admin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import PERSON_ROLES, Permission, Role
from mwallet.core.domain.tariffs import Tier
from mwallet.core.domain.users import Principal, User, normalize_phone
from mwallet.core.errors import InvalidRole, PermissionDenied, Refused, UserNotFound
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


def list_users(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    limit: int,
    after_phone: str | None,
) -> Sequence[User]:
    """A page of users by phone number, after `after_phone` (a number the last page listed, read
    as any number is: garbage would silently start the list somewhere else)."""
    authorize(uow, clock, actor, Permission.READ_BOOKS, "list users")
    check_limit(limit)
    after = None if after_phone is None else normalize_phone(after_phone, settings.region)
    with uow.read_only():
        return uow.users.page(limit=limit, after_phone=after)


def show_user(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, settings: InstanceSettings, phone: str
) -> User:
    authorize(uow, clock, actor, Permission.READ_BOOKS, "look up users")
    e164 = normalize_phone(phone, settings.region)
    with uow.read_only():
        user = uow.users.by_phone(e164)
    if user is None:
        raise UserNotFound(f"no user is registered to {e164}")
    return user


def set_role(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    phone: str,
    role: Role,
) -> User:
    """Give a user a role. The last admin cannot be demoted: someone must be able to manage."""
    authorize(uow, clock, actor, Permission.MANAGE_USERS, "give roles")
    if role not in PERSON_ROLES:
        raise InvalidRole(f"a person cannot have the role {role.value!r}: it belongs to clients")
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    with uow:
        uow.users.lock_roles()
        user = uow.users.by_phone(e164)
        if user is None:
            raise UserNotFound(f"no user is registered to {e164}")
        demoting = user.role is Role.ADMIN and role is not Role.ADMIN
        if demoting and uow.users.count_with_role(Role.ADMIN) <= 1:
            raise Refused(f"{e164} is the last admin; make another admin first")
        uow.users.set_role(user.id, role)
        uow.audit.append(
            AuditEvent("user.role_changed", actor.user_id, user.id,
                       {"from": user.role.value, "to": role.value}),
            now,
        )  # fmt: skip
        uow.commit()
    return replace(user, role=role)


def set_tier(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    phone: str,
    tier: Tier,
) -> User:
    """Put a user in a KYC tier (their identity checked: `verified`), which sets their limits."""
    authorize(uow, clock, actor, Permission.MANAGE_USERS, "set KYC tiers")
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    with uow:
        user = uow.users.by_phone(e164)
        if user is None:
            raise UserNotFound(f"no user is registered to {e164}")
        uow.users.set_tier(user.id, tier)
        uow.audit.append(
            AuditEvent("user.tier_changed", actor.user_id, user.id,
                       {"from": user.tier.value, "to": tier.value}),
            now,
        )  # fmt: skip
        uow.commit()
    return replace(user, tier=tier)


def bootstrap_admin(
    uow: UnitOfWork, clock: Clock, *, settings: InstanceSettings, phone: str
) -> User:
    """Make the registered user at `phone` the first admin. Only while there is no admin: every
    later admin is made by an admin (`set_role`)."""
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    with uow:
        uow.users.lock_roles()
        taken = uow.users.count_with_role(Role.ADMIN) > 0
        if not taken:
            user = uow.users.by_phone(e164)
            if user is None:
                raise UserNotFound(f"no user is registered to {e164}: register first, then init")
            uow.users.set_role(user.id, Role.ADMIN)
            uow.audit.append(AuditEvent("admin.bootstrapped", None, user.id, {"phone": e164}), now)
            uow.commit()
            return replace(user, role=Role.ADMIN)
    # Refused: on record in a transaction of its own, since the one above rolled back.
    with uow:
        uow.audit.append(
            AuditEvent(
                "permission.denied", None, e164, {"action": "bootstrap admin", "phone": e164}
            ),
            now,
        )
        uow.commit()
    raise PermissionDenied("there is an admin already: an admin gives the admin role")
