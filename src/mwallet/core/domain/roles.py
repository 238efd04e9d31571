"""Who may do what: roles, the permissions they carry, and the check every use case makes.

The authentication issue brings agents and ATM terminals their own permissions; for now the
roles that matter are customers (their own wallet only), admins (manage users and read the books)
and auditors (read the books).
"""

from __future__ import annotations

from enum import StrEnum

from mwallet.core.errors import InvalidRole


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    ATM = "atm"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Permission(StrEnum):
    MOVE_OWN_MONEY = "move_own_money"  # top up, send from one's own wallet
    READ_BOOKS = "read_books"  # verify the ledger, read and verify the audit log, list users
    MANAGE_USERS = "manage_users"  # freeze, unfreeze, close wallets; give roles


# An ATM terminal only redeems withdrawals and an auditor only reads; everyone else who has a
# wallet may move their own money.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER: frozenset({Permission.MOVE_OWN_MONEY}),
    Role.AGENT: frozenset({Permission.MOVE_OWN_MONEY}),
    Role.ATM: frozenset(),
    Role.ADMIN: frozenset(
        {Permission.MOVE_OWN_MONEY, Permission.READ_BOOKS, Permission.MANAGE_USERS}
    ),
    Role.AUDITOR: frozenset({Permission.READ_BOOKS}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        known = ", ".join(role.value for role in Role)
        raise InvalidRole(f"unknown role {text!r}; roles: {known}") from None
