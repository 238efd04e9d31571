"""OAuth clients' kinds, scopes and names; the roles a person (not a client) can be given."""

from __future__ import annotations

import re

import pytest

from mwallet.core.domain.clients import (
    KIND_ROLE,
    KIND_SCOPES,
    MAX_NAME,
    ClientKind,
    check_client_name,
    parse_kind,
    parse_scopes,
)
from mwallet.core.domain.roles import PERSON_ROLES, Role, parse_role
from mwallet.core.errors import InvalidInput, InvalidRole

ALLOWED = frozenset({"wallet:read", "wallet:write", "agent:cash"})


# --- kinds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("atm", ClientKind.ATM),
        ("ATM", ClientKind.ATM),
        (" agent ", ClientKind.AGENT),
        ("Partner", ClientKind.PARTNER),
    ],
)
def test_parse_kind(text: str, kind: ClientKind) -> None:
    assert parse_kind(text) is kind


@pytest.mark.parametrize("text", ["", "  ", "bank", "admin", "customer", "atms", "a tm"])
def test_unknown_kinds_are_refused_with_the_known_ones(text: str) -> None:
    with pytest.raises(InvalidInput, match="atm, agent, partner"):
        parse_kind(text)


def test_each_kind_has_a_role_and_its_own_scopes() -> None:
    assert set(KIND_ROLE) == set(ClientKind) == set(KIND_SCOPES)
    assert {KIND_ROLE[kind] for kind in ClientKind} == {Role.ATM, Role.AGENT, Role.PARTNER}
    assert all(KIND_SCOPES[kind] for kind in ClientKind)
    assert KIND_SCOPES[ClientKind.ATM].isdisjoint(KIND_SCOPES[ClientKind.PARTNER])


# --- scopes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [None, "", "   ", "\t\n"])
def test_no_scopes_means_all_allowed(text: str | None) -> None:
    assert parse_scopes(text, allowed=ALLOWED) == ALLOWED


@pytest.mark.parametrize(
    ("text", "scopes"),
    [
        ("wallet:read", {"wallet:read"}),
        ("wallet:read wallet:write", {"wallet:read", "wallet:write"}),
        ("wallet:read,wallet:write", {"wallet:read", "wallet:write"}),
        (" wallet:read ,  agent:cash ", {"wallet:read", "agent:cash"}),
        ("wallet:read wallet:read", {"wallet:read"}),
        ("wallet:read,,agent:cash,", {"wallet:read", "agent:cash"}),
    ],
)
def test_parse_scopes_space_or_comma_separated(text: str, scopes: set[str]) -> None:
    assert parse_scopes(text, allowed=ALLOWED) == frozenset(scopes)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("admin", "admin"),
        ("wallet:read admin", "admin"),
        ("Wallet:Read", "Wallet:Read"),  # scopes are case-sensitive
        ("wallet:*", "wallet:*"),
        ("wallet", "wallet"),
        ("wallet:read;wallet:write", "wallet:read;wallet:write"),
    ],
)
def test_scopes_outside_the_allowed_set_are_refused(text: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(f"'{named}'")) as raised:
        parse_scopes(text, allowed=ALLOWED)
    assert "agent:cash wallet:read wallet:write" in raised.value.message


def test_a_kind_cannot_take_another_kinds_scopes() -> None:
    for scope in KIND_SCOPES[ClientKind.PARTNER]:
        with pytest.raises(InvalidInput):
            parse_scopes(scope, allowed=KIND_SCOPES[ClientKind.ATM])


# --- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("ATM Baixa 1", "ATM Baixa 1"),
        ("  ATM   Baixa\t1 ", "ATM Baixa 1"),
        ("Loja\nCentral", "Loja Central"),
        ("Caixa Económica", "Caixa Económica"),
        ("x" * MAX_NAME, "x" * MAX_NAME),
        (" " + "x" * MAX_NAME + " ", "x" * MAX_NAME),
    ],
)
def test_check_client_name_collapses_whitespace(name: str, cleaned: str) -> None:
    assert check_client_name(name) == cleaned


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(" \t\n ", id="blank"),
        pytest.param("x" * (MAX_NAME + 1), id="too-long"),
        pytest.param("a " * 41, id="too-long-after-collapsing"),
        pytest.param("ATM\x00one", id="nul"),
        pytest.param("ATM \x1b[31mred", id="terminal-escape"),
        pytest.param("ATM\u200bone", id="zero-width-space"),
        pytest.param("ATM\u202eeno", id="bidi-override"),
        pytest.param("ATM\x7f", id="delete"),
    ],
)
def test_bad_client_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"1 to {MAX_NAME} printable"):
        check_client_name(name)


# --- person roles --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("customer", Role.CUSTOMER),
        ("Agent", Role.AGENT),
        (" ADMIN ", Role.ADMIN),
        ("auditor", Role.AUDITOR),
    ],
)
def test_parse_role_gives_person_roles(text: str, role: Role) -> None:
    assert parse_role(text) is role


def test_every_person_role_parses() -> None:
    assert {parse_role(role.value) for role in PERSON_ROLES} == PERSON_ROLES
    assert Role.ATM not in PERSON_ROLES
    assert Role.PARTNER not in PERSON_ROLES


@pytest.mark.parametrize("text", ["atm", "ATM", "partner", " Partner "])
def test_client_roles_are_refused_for_people_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidRole, match="OAuth clients") as raised:
        parse_role(text)
    assert "mwallet admin clients add" in raised.value.message
    assert "admin, agent, auditor, customer" in raised.value.message


@pytest.mark.parametrize("text", ["", "root", "superuser", "admins", "cust omer"])
def test_unknown_roles_are_refused_without_the_client_hint(text: str) -> None:
    with pytest.raises(InvalidRole, match="admin, agent, auditor, customer") as raised:
        parse_role(text)
    assert "OAuth" not in raised.value.message
    assert isinstance(raised.value, InvalidInput)
