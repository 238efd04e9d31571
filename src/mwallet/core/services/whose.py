"""Whose wallet a read names: the caller's own, or another person's by phone number (the CLI's
`--user`) or by user id (the HTTP paths' `{user_id}`). One's own needs `use_own_wallet`; another's
`read_books` (admins and auditors), checked before the other person is looked up, so a refusal
says nothing about whether they exist."""

from __future__ import annotations

import re

from mwallet.core.domain.users import Principal, User, normalize_phone
from mwallet.core.errors import InvalidInput, UserNotFound, quoted
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

# What a user id can look like (a ULID, or a short name in tests): anything else is no one's.
_USER_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def is_own(
    principal: Principal, settings: InstanceSettings, *, phone: str | None, user_id: str | None
) -> bool:
    if phone is not None and user_id is not None:
        raise InvalidInput("name the wallet by phone or by user id, not both")
    if user_id is not None:
        return user_id == principal.user_id
    return phone is None or normalize_phone(phone, settings.region) == principal.phone


def other_person(
    uow: UnitOfWork, settings: InstanceSettings, *, phone: str | None, user_id: str | None
) -> User:
    """The person named by phone or user id (inside the caller's unit of work)."""
    if user_id is not None:
        found = uow.users.by_id(user_id) if _USER_ID.fullmatch(user_id) else None
        if found is None:
            raise UserNotFound(f"no user has the id {quoted(user_id)}")
        return found
    e164 = normalize_phone(phone or "", settings.region)
    found = uow.users.by_phone(e164)
    if found is None:
        raise UserNotFound(f"no user is registered to {e164}")
    return found
