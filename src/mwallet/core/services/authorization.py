"""The one check before every privileged use case: may this principal do it? Denials are audited."""

from __future__ import annotations

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.roles import PERSON_ROLES, WALLET_PERMISSIONS, Permission, allows
from mwallet.core.domain.users import Principal
from mwallet.core.errors import PermissionDenied
from mwallet.core.services.unit_of_work import UnitOfWork


def authorize(
    uow: UnitOfWork, clock: Clock, actor: Principal, permission: Permission, action: str
) -> None:
    """Return if `actor` holds `permission`; otherwise record the denial and raise."""
    if allows(actor.role, permission) and not (actor.client and permission in WALLET_PERMISSIONS):
        return
    now = clock.now()
    with uow:
        uow.audit.append(
            AuditEvent(
                "permission.denied",
                actor.user_id,
                None,
                {"action": action, "role": actor.role.value, "needs": permission.value},
            ),
            now,
        )
        uow.commit()
    # An agent's device is a client with a person's role: say so; an ATM is a client by name.
    client = " client" if actor.client and actor.role in PERSON_ROLES else ""
    who = f"{_article(actor.role.value)} {actor.role.value}{client}"
    raise PermissionDenied(f"{who} may not {action}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
