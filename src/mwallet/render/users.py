"""A person's record as a document: what `mwallet register|admin users … --json` print and what
`POST /auth/register` and `GET /admin/users/by-phone/{phone}` answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mwallet.render.values import when

if TYPE_CHECKING:  # not imported to render: the CLI's start-up does not pay for it
    from mwallet.core.domain.users import User


def user_json(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "phone": user.phone,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role.value,
        "tier": user.tier.value,
        "created_at": when(user.created_at),
    }
