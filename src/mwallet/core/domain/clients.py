"""OAuth 2.0 clients: machines that act on the wallet with the client-credentials grant.

Each kind of client has the role it acts as and the scopes it may be given; a client is
registered with some of its kind's scopes and each token it asks for carries some of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mwallet.core.domain.roles import Role
from mwallet.core.errors import InvalidInput, quoted


class ClientKind(StrEnum):
    ATM = "atm"
    AGENT = "agent"
    PARTNER = "partner"


KIND_ROLE = {
    ClientKind.ATM: Role.ATM,
    ClientKind.AGENT: Role.AGENT,
    ClientKind.PARTNER: Role.PARTNER,
}

KIND_SCOPES: dict[ClientKind, frozenset[str]] = {
    ClientKind.ATM: frozenset({"atm:withdrawals"}),
    ClientKind.AGENT: frozenset({"agent:cash"}),
    ClientKind.PARTNER: frozenset({"payments:callbacks"}),
}

MAX_NAME = 80


@dataclass(frozen=True, slots=True)
class OAuthClient:
    id: str
    name: str
    kind: ClientKind
    scopes: frozenset[str]
    created_at: datetime
    disabled_at: datetime | None

    @property
    def role(self) -> Role:
        return KIND_ROLE[self.kind]


def parse_kind(text: str) -> ClientKind:
    try:
        return ClientKind(text.strip().lower())
    except ValueError:
        known = ", ".join(kind.value for kind in ClientKind)
        raise InvalidInput(f"unknown client kind {quoted(text)}; kinds: {known}") from None


def parse_scopes(text: str | None, *, allowed: frozenset[str]) -> frozenset[str]:
    """Scopes from OAuth's space-separated (or comma-separated) text; None means all allowed."""
    if text is None or not text.strip():
        return allowed
    wanted = frozenset(part for part in text.replace(",", " ").split() if part)
    unknown = sorted(wanted - allowed)
    if unknown:
        raise InvalidInput(
            f"scope {quoted(unknown[0])} is not allowed here; allowed: {' '.join(sorted(allowed))}"
        )
    return wanted


def check_client_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME or not cleaned.isprintable():
        raise InvalidInput(f"a client's name must be 1 to {MAX_NAME} printable characters")
    return cleaned
