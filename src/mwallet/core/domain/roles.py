"""Who may do what: roles, the permissions they carry, and the check every use case makes.

People hold a role (customer, agent, admin, auditor); OAuth clients (ATM terminals, agents'
devices, partners) hold the role of their kind and act only within their token's scopes.
"""

from __future__ import annotations

from enum import StrEnum

from mwallet.core.errors import InvalidRole, quoted


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    ATM = "atm"
    ADMIN = "admin"
    AUDITOR = "auditor"
    PARTNER = "partner"  # a business calling back into the wallet (billers, later)


class Permission(StrEnum):
    USE_OWN_WALLET = "use_own_wallet"  # read one's own balance and history
    MOVE_OWN_MONEY = "move_own_money"  # top up, send from one's own wallet
    READ_BOOKS = "read_books"  # verify the ledger, read and verify the audit log, list users
    MANAGE_USERS = "manage_users"  # freeze, unfreeze, close wallets; give roles
    MANAGE_SECURITY = "manage_security"  # signing and data keys, OAuth clients, step-up limit
    MANAGE_TERMINALS = "manage_terminals"  # register ATMs and agents, load cassettes
    REDEEM_WITHDRAWALS = "redeem_withdrawals"  # check a code and PIN, pay the cash out
    CASH_IN = "cash_in"  # take a customer's cash and send them e-money from one's float


# People have wallets; an auditor only reads (its own wallet too). An ATM only redeems
# withdrawals (with the `atm:withdrawals` scope); an agent also takes cash in. Partners' permissions
# arrive with payments.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER: frozenset({Permission.USE_OWN_WALLET, Permission.MOVE_OWN_MONEY}),
    Role.AGENT: frozenset(
        {
            Permission.USE_OWN_WALLET,
            Permission.MOVE_OWN_MONEY,
            Permission.REDEEM_WITHDRAWALS,
            Permission.CASH_IN,
        }
    ),
    Role.ATM: frozenset({Permission.REDEEM_WITHDRAWALS}),
    Role.ADMIN: frozenset(
        {
            Permission.USE_OWN_WALLET,
            Permission.MOVE_OWN_MONEY,
            Permission.READ_BOOKS,
            Permission.MANAGE_USERS,
            Permission.MANAGE_SECURITY,
            Permission.MANAGE_TERMINALS,
        }
    ),
    Role.AUDITOR: frozenset({Permission.USE_OWN_WALLET, Permission.READ_BOOKS}),
    Role.PARTNER: frozenset(),
}

# Permissions about one's own wallet: a client (even of an agent's kind) has none.
WALLET_PERMISSIONS = frozenset(
    {Permission.USE_OWN_WALLET, Permission.MOVE_OWN_MONEY, Permission.CASH_IN}
)

# Roles a person can be given; the others belong to OAuth clients.
PERSON_ROLES = frozenset({Role.CUSTOMER, Role.AGENT, Role.ADMIN, Role.AUDITOR})


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def parse_role(text: str) -> Role:
    """A role a person can be given, from its name."""
    try:
        role = Role(text.strip().lower())
    except ValueError:
        role = None
    if role is None or role not in PERSON_ROLES:
        known = ", ".join(sorted(role.value for role in PERSON_ROLES))
        hint = (
            "; ATM terminals and partners are OAuth clients (`mwallet admin clients add`)"
            if role is not None
            else ""
        )
        raise InvalidRole(f"a person cannot have the role {quoted(text)}; roles: {known}{hint}")
    return role
