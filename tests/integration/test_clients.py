"""OAuth clients and the client-credentials grant through the services, on SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.clients import KIND_ROLE, KIND_SCOPES, ClientKind, OAuthClient
from mwallet.core.domain.roles import Role
from mwallet.core.domain.sessions import ACCESS_TOKEN_LIFETIME
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    ClientNotFound,
    InvalidClientCredentials,
    InvalidInput,
    PermissionDenied,
    ScopeNotAllowed,
    SessionExpired,
    TokenExpired,
)
from mwallet.core.services.clients import NewClient
from mwallet.core.services.wallet_service import WalletService
from tests.support import OPERATOR, PASSWORD, make_admin, register


def audit(service: WalletService, action: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(subject, details) of each record of `action`, oldest first."""
    return [
        (record.subject, record.details)
        for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))
        if record.action == action
    ]


def claims_of(service: WalletService, token: str) -> dict[str, Any]:
    """The claims of `token`, its signature checked by PyJWT against the wallet's JWKS (the
    tokens carry the test clock's times, so PyJWT checks none)."""
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, Any] = jwt.decode(
        token,
        key=jwt.PyJWKSet.from_dict(service.jwks())[kid].key,
        algorithms=["EdDSA"],
        audience="mwallet",
        issuer="mwallet",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


def atm(service: WalletService, admin: Principal) -> tuple[NewClient, Principal]:
    """A registered ATM terminal and the principal its token stands for."""
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM Baixa 1")
    pair = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    return terminal, service.authenticate(access_token=pair.access_token)


def stored_rows(wallet: Wallet) -> list[str]:
    with wallet.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM oauth_clients")).all()
    return [" ".join(str(value) for value in row) for row in rows]


# --- registering ---------------------------------------------------------------------------------
def test_an_admin_registers_every_kind_with_its_scopes(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    ids = {}
    for kind in ClientKind:
        added = service.add_client(actor=admin, kind=kind, name=f"{kind.value} one")
        assert added.client.kind is kind
        assert added.client.role is KIND_ROLE[kind]
        assert added.client.scopes == KIND_SCOPES[kind]
        assert added.client.disabled_at is None
        assert len(added.secret) >= 43  # 256 random bits
        ids[added.client.id] = kind
    assert {client.id: client.kind for client in service.list_clients(actor=admin, limit=10)} == ids
    assert {
        subject: (details["kind"], details["scopes"])
        for subject, details in audit(service, "client.created")
    } == {client_id: (kind.value, " ".join(KIND_SCOPES[kind])) for client_id, kind in ids.items()}


def test_only_the_secrets_digest_is_stored(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    added = service.add_client(actor=admin, kind=ClientKind.PARTNER, name="Biller")
    (row,) = stored_rows(wallet)
    assert added.client.id in row  # the row is really read
    assert added.secret not in row
    assert hashlib.sha256(added.secret.encode()).hexdigest() in row


def test_a_scope_outside_the_kinds_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    with pytest.raises(InvalidInput, match="agent:cash"):
        service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 2", scopes="agent:cash")
    with pytest.raises(InvalidInput):
        service.add_client(
            actor=admin, kind=ClientKind.ATM, name="ATM 2", scopes="atm:withdrawals admin"
        )
    assert service.list_clients(actor=admin, limit=10) == []
    named = service.add_client(
        actor=admin, kind=ClientKind.ATM, name="ATM 2", scopes=" atm:withdrawals "
    )
    assert named.client.scopes == frozenset({"atm:withdrawals"})


def test_listing_clients_never_shows_a_secret(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    added = [
        service.add_client(actor=admin, kind=kind, name=f"{kind.value} two") for kind in ClientKind
    ]
    listed = service.list_clients(actor=admin, limit=10)
    assert {client.id for client in listed} == {new.client.id for new in added}
    assert {field.name for field in dataclasses.fields(OAuthClient)} == {
        "id", "name", "kind", "scopes", "created_at", "disabled_at",
    }  # fmt: skip
    shown = repr(listed)
    for new in added:
        assert new.secret not in shown
        assert hashlib.sha256(new.secret.encode()).hexdigest() not in shown


def test_a_customer_cannot_manage_clients(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal, _ = atm(service, admin)
    ana = register(service)
    with pytest.raises(PermissionDenied):
        service.add_client(actor=ana, kind=ClientKind.ATM, name="Mine")
    with pytest.raises(PermissionDenied):
        service.list_clients(actor=ana, limit=10)
    with pytest.raises(PermissionDenied):
        service.disable_client(actor=ana, client_id=terminal.client.id)
    assert len(service.list_clients(actor=admin, limit=10)) == 1
    assert [details["action"] for _, details in audit(service, "permission.denied")] == [
        "register clients",
        "list clients",
        "disable clients",
    ]


# --- the client-credentials grant ----------------------------------------------------------------
def test_the_right_secret_gets_a_client_token(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 3")
    pair = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    assert pair.refresh_token is None
    assert pair.family_id is None
    assert pair.access_expires_at == clock.now() + ACCESS_TOKEN_LIFETIME
    claims = claims_of(service, pair.access_token)
    assert claims["sub"] == terminal.client.id
    assert claims["roles"] == ["atm"]
    assert claims["scope"] == "atm:withdrawals"
    assert claims["kind"] == "client"
    assert "sid" not in claims


def test_a_client_token_stands_for_the_client_within_its_scopes(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal, principal = atm(service, admin)
    assert principal == Principal(
        terminal.client.id,
        "",
        "ATM Baixa 1",
        Role.ATM,
        scopes=frozenset({"atm:withdrawals"}),
        client=True,
    )


def test_a_client_token_expires_after_15_minutes(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal = service.add_client(actor=admin, kind=ClientKind.AGENT, name="Agent 1")
    pair = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    clock.advance(ACCESS_TOKEN_LIFETIME)
    with pytest.raises(TokenExpired):
        service.authenticate(access_token=pair.access_token)


def test_a_wrong_secret_and_an_unknown_client_get_the_same_answer(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 4")
    messages = []
    for client_id, secret in (
        (terminal.client.id, terminal.secret[:-1] + ("A" if terminal.secret[-1] != "A" else "B")),
        (terminal.client.id, ""),
        ("no-such-client", terminal.secret),
    ):
        with pytest.raises(InvalidClientCredentials) as caught:
            service.client_token(client_id=client_id, client_secret=secret)
        messages.append(caught.value.message)
    assert len(set(messages)) == 1
    assert [subject for subject, _ in audit(service, "client.auth_failed")] == [
        terminal.client.id,
        terminal.client.id,
        "no-such-client",
    ]


def test_a_scope_not_granted_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 5")
    for scope in ("agent:cash", "payments:callbacks", "atm:withdrawals move_own_money"):
        with pytest.raises(ScopeNotAllowed):
            service.client_token(
                client_id=terminal.client.id, client_secret=terminal.secret, scope=scope
            )
    pair = service.client_token(
        client_id=terminal.client.id, client_secret=terminal.secret, scope="atm:withdrawals"
    )
    assert claims_of(service, pair.access_token)["scope"] == "atm:withdrawals"


def test_a_disabled_client_gets_no_token_and_its_token_stops_working(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal, _ = atm(service, admin)
    earlier = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    service.disable_client(actor=admin, client_id=terminal.client.id)
    service.disable_client(actor=admin, client_id=terminal.client.id)  # already: no-op

    with pytest.raises(InvalidClientCredentials):
        service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    with pytest.raises(SessionExpired):
        service.authenticate(access_token=earlier.access_token)
    (listed,) = service.list_clients(actor=admin, limit=10)
    assert listed.disabled_at is not None
    assert [subject for subject, _ in audit(service, "client.disabled")] == [terminal.client.id]
    with pytest.raises(ClientNotFound):
        service.disable_client(actor=admin, client_id="no-such-client")


# --- what a client may not do --------------------------------------------------------------------
def refused_calls(service: WalletService, target: str) -> dict[str, Callable[[Principal], object]]:
    money = service.parse_money("5")
    return {
        "top up": lambda who: service.topup(
            who, amount=money, source="sandbox", idempotency_key="atm-topup"
        ),
        "send money": lambda who: service.transfer(
            who, to_phone=target, amount=money, note=None, idempotency_key="atm-send"
        ),
        "verify the ledger": lambda who: service.verify_ledger(actor=who),
        "read the audit log": lambda who: service.audit_log(actor=who, limit=5),
        "list users": lambda who: service.list_users(actor=who, limit=5),
        "read a balance": service.balance,
        "read a history": lambda who: service.movements(who, limit=5),
    }


def test_an_atm_client_is_refused_everything_else_on_record(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal, principal = atm(service, admin)
    bruno = register(service)
    service.topup(bruno, amount=service.parse_money("50"), source="sandbox", idempotency_key="b")
    for action, call in refused_calls(service, bruno.phone).items():
        with pytest.raises(PermissionDenied, match=f"atm may not {action}$"):
            call(principal)
    with pytest.raises(PermissionDenied):
        service.begin_two_factor(principal)
    with pytest.raises(PermissionDenied):
        service.change_password(principal, current=PASSWORD, new="another-long-passphrase")

    denied = [
        (subject, details)
        for subject, details in audit(service, "permission.denied")
        if details.get("role") == "atm"
    ]
    assert [details["action"] for _, details in denied] == list(refused_calls(service, ""))
    assert service.balance(bruno).balance == service.parse_money("50")
    assert service.verify_ledger(actor=admin).ok
    actors = {
        record.actor
        for record in service.audit_log(actor=OPERATOR, limit=1000)
        if record.action == "permission.denied"
    }
    assert actors == {terminal.client.id}
