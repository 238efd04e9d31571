"""Use cases of OAuth 2.0 clients: register, list and disable them (admins), and the
client-credentials grant (RFC 6749 §4.4) by which a client gets an access token."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.clients import (
    KIND_SCOPES,
    ClientKind,
    OAuthClient,
    check_client_name,
    parse_scopes,
)
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    ClientNotFound,
    InvalidClientCredentials,
    InvalidInput,
    ScopeNotAllowed,
    quoted,
)
from mwallet.core.security import token_digest
from mwallet.core.services import tokens
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import UnitOfWork

_BAD_CLIENT = "unknown client or wrong secret"


@dataclass(frozen=True, slots=True)
class NewClient:
    client: OAuthClient
    secret: str  # shown once; only its digest is kept


def add_client(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    kind: ClientKind,
    name: str,
    scopes: str | None,
) -> NewClient:
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "register clients")
    granted = parse_scopes(scopes, allowed=KIND_SCOPES[kind])
    now = clock.now()
    client = OAuthClient(new_id(now), check_client_name(name), kind, granted, now, None)
    # 256 random bits: a fast digest keeps it safe, as nothing about it can be guessed.
    secret = secrets.token_urlsafe(32)
    with uow:
        uow.clients.add(client, token_digest(secret))
        uow.audit.append(
            AuditEvent(
                "client.created",
                actor.user_id,
                client.id,
                {"kind": kind.value, "scopes": " ".join(sorted(granted))},
            ),
            now,
        )
        uow.commit()
    return NewClient(client, secret)


def list_clients(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, limit: int
) -> Sequence[OAuthClient]:
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "list clients")
    check_limit(limit)
    with uow.read_only():
        return uow.clients.page(limit=limit)


def disable_client(uow: UnitOfWork, clock: Clock, *, actor: Principal, client_id: str) -> None:
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "disable clients")
    now = clock.now()
    with uow:
        if uow.clients.by_id(client_id.strip()) is None:
            raise ClientNotFound(f"no client {quoted(client_id)}")
        if uow.clients.disable(client_id.strip(), now):
            uow.audit.append(AuditEvent("client.disabled", actor.user_id, client_id.strip()), now)
        uow.commit()


def client_credentials(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
) -> TokenPair:
    """An access token for a client that proves its secret, with the scopes it asks for (all
    it holds when it names none)."""
    now = clock.now()
    with uow:
        found = uow.clients.by_id(client_id.strip())
        expected = found[1] if found is not None else token_digest("")
        matches = hmac.compare_digest(expected, token_digest(client_secret))
        if found is None or not matches or found[0].disabled_at is not None:
            uow.audit.append(
                AuditEvent("client.auth_failed", None, client_id.strip()[:64] or None), now
            )
            uow.commit()
            raise InvalidClientCredentials(_BAD_CLIENT)
        client = found[0]
        try:
            scopes = parse_scopes(scope, allowed=client.scopes)
        except InvalidInput as exc:
            raise ScopeNotAllowed(exc.message) from None
        pair = tokens.issue_client_token(uow, now, box, client, scopes)
        uow.commit()
    return pair
