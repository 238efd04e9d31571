"""Roles and permissions through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.domain.clients import ClientKind
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    InsufficientFunds,
    InvalidRole,
    InvalidToken,
    PermissionDenied,
    Refused,
    UserNotFound,
)
from mwallet.core.services.wallet_service import WalletService
from tests.support import OPERATOR, PASSWORD, make_admin, new_phone, register


def denials(service: WalletService) -> list[dict[str, object]]:
    return [
        dict(record.details)
        for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))
        if record.action == "permission.denied"
    ]


def privileged_calls(
    service: WalletService, target: str
) -> dict[str, Callable[[Principal], object]]:
    return {
        "verify the ledger": lambda who: service.verify_ledger(actor=who),
        "read the audit log": lambda who: service.audit_log(actor=who, limit=5),
        "verify the audit log": lambda who: service.verify_audit_log(actor=who, anchor=None),
        "list users": lambda who: service.list_users(actor=who, limit=5),
        "look up users": lambda who: service.show_user(actor=who, phone=target),
        "set wallets frozen": lambda who: service.set_wallet_status(
            actor=who, phone=target, status=AccountStatus.FROZEN
        ),
        "give roles": lambda who: service.set_role(actor=who, phone=target, role=Role.AUDITOR),
    }


def test_a_customer_may_do_none_of_it_and_each_refusal_is_on_record(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    for action, call in privileged_calls(service, bruno.phone).items():
        with pytest.raises(PermissionDenied, match=f"a customer may not {action}"):
            call(ana)
    recorded = denials(service)
    assert [entry["action"] for entry in recorded] == list(privileged_calls(service, ""))
    assert all(entry["role"] == "customer" for entry in recorded)


def test_an_auditor_reads_the_books_but_changes_nothing(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    carla, bruno = register(service), register(service)
    service.set_role(actor=admin, phone=carla.phone, role=Role.AUDITOR)
    auditor = service.login(phone=carla.phone, password=PASSWORD).principal
    assert auditor.role is Role.AUDITOR

    assert service.verify_ledger(actor=auditor).ok
    assert service.verify_audit_log(actor=auditor, anchor=None).ok
    assert service.show_user(actor=auditor, phone=bruno.phone).role is Role.CUSTOMER
    with pytest.raises(PermissionDenied):
        service.set_wallet_status(actor=auditor, phone=bruno.phone, status=AccountStatus.FROZEN)
    with pytest.raises(PermissionDenied):
        service.set_role(actor=auditor, phone=auditor.phone, role=Role.ADMIN)


def test_the_first_admin_is_made_once_and_the_last_cannot_be_demoted(wallet: Wallet) -> None:
    service = wallet.service
    with pytest.raises(UserNotFound):
        service.bootstrap_admin(phone=new_phone())  # register first
    ana, bruno = register(service), register(service)
    assert service.bootstrap_admin(phone=ana.phone).role is Role.ADMIN
    with pytest.raises(PermissionDenied):
        service.bootstrap_admin(phone=bruno.phone)  # an admin exists: only an admin makes more

    admin = service.login(phone=ana.phone, password=PASSWORD).principal
    with pytest.raises(Refused, match="last admin"):
        service.set_role(actor=admin, phone=ana.phone, role=Role.CUSTOMER)
    service.set_role(actor=admin, phone=bruno.phone, role=Role.ADMIN)
    service.set_role(actor=admin, phone=ana.phone, role=Role.CUSTOMER)  # now there is another
    assert service.show_user(actor=OPERATOR, phone=ana.phone).role is Role.CUSTOMER

    actions = [record.action for record in service.audit_log(actor=OPERATOR, limit=50)]
    assert "admin.bootstrapped" in actions
    assert actions.count("user.role_changed") == 2


def test_users_page_in_phone_order(wallet: Wallet) -> None:
    service = wallet.service
    phones = sorted(register(service).phone for _ in range(5))
    first = service.list_users(actor=OPERATOR, limit=3)
    rest = service.list_users(actor=OPERATOR, limit=3, after_phone=first[-1].phone)
    assert [user.phone for user in [*first, *rest]] == phones


def test_first_admins_racing_make_exactly_one(db_url: str) -> None:
    import threading

    from tests.support import open_wallet

    wallets = [open_wallet(db_url) for _ in range(4)]
    try:
        people = [register(wallets[0].service) for _ in range(4)]
        start = threading.Barrier(4)
        outcomes: list[str] = []

        def bootstrap(index: int) -> None:
            start.wait(30)
            try:
                wallets[index].service.bootstrap_admin(phone=people[index].phone)
                outcomes.append("admin")
            except PermissionDenied:
                outcomes.append("refused")

        threads = [threading.Thread(target=bootstrap, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["admin", "refused", "refused", "refused"]
        roles = [
            wallets[0].service.show_user(actor=OPERATOR, phone=person.phone).role
            for person in people
        ]
        assert roles.count(Role.ADMIN) == 1
    finally:
        for built in wallets:
            built.close()


def test_two_admins_demoting_each_other_at_once_leave_one(db_url: str) -> None:
    import threading

    from tests.support import open_wallet

    wallets = [open_wallet(db_url) for _ in range(2)]
    try:
        service = wallets[0].service
        first = make_admin(service)
        second = make_admin(service)
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def demote(index: int, actor: Principal, target: Principal) -> None:
            start.wait(30)
            try:
                wallets[index].service.set_role(actor=actor, phone=target.phone, role=Role.CUSTOMER)
                outcomes.append("demoted")
            except Refused:
                outcomes.append("refused")

        threads = [
            threading.Thread(target=demote, args=(0, first, second)),
            threading.Thread(target=demote, args=(1, second, first)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["demoted", "refused"]
        admins = [user for user in service.list_users(actor=OPERATOR, limit=100)
                  if user.role is Role.ADMIN]  # fmt: skip
        assert len(admins) == 1
    finally:
        for built in wallets:
            built.close()


def test_an_atm_client_or_an_auditor_moves_no_money(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    carla, bruno = register(service), register(service)
    service.set_role(actor=admin, phone=carla.phone, role=Role.AUDITOR)
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 1")
    token = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    principals = {
        "atm": service.authenticate(access_token=token.access_token),
        "auditor": service.login(phone=carla.phone, password=PASSWORD).principal,
    }
    for who, principal in principals.items():
        with pytest.raises(PermissionDenied, match=f"an? {who} may not top up"):
            service.topup(
                principal, amount=service.parse_money("5"), source="sandbox",
                idempotency_key=f"t-{who}",
            )  # fmt: skip
        with pytest.raises(PermissionDenied, match=f"an? {who} may not send money"):
            service.transfer(
                principal, to_phone=bruno.phone, amount=service.parse_money("1"), note=None,
                idempotency_key=f"s-{who}",
            )  # fmt: skip
    with pytest.raises(PermissionDenied, match="an atm may not read a balance"):
        service.balance(principals["atm"])
    with pytest.raises(PermissionDenied, match="an atm may not read a history"):
        service.movements(principals["atm"], limit=5)
    with pytest.raises(PermissionDenied, match="clients have no password"):
        service.change_password(principals["atm"], current=PASSWORD, new="another passphrase")
    assert service.balance(principals["auditor"]).balance.minor == 0  # an auditor's own wallet
    assert service.verify_ledger(actor=admin).ok
    assert service.balance(bruno).balance.minor == 0


def test_a_person_cannot_be_given_a_client_role(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    ana = register(service)
    for role in (Role.ATM, Role.PARTNER):
        with pytest.raises(InvalidRole, match="belongs to clients"):
            service.set_role(actor=admin, phone=ana.phone, role=role)
    assert service.show_user(actor=admin, phone=ana.phone).role is Role.CUSTOMER


def test_a_refused_bootstrap_is_on_record(wallet: Wallet) -> None:
    service = wallet.service
    make_admin(service)
    intruder = register(service)
    with pytest.raises(PermissionDenied):
        service.bootstrap_admin(phone=intruder.phone)
    assert {"action": "bootstrap admin", "phone": intruder.phone} in denials(service)


def test_a_customer_cannot_read_or_move_another_customers_money(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(bruno, amount=service.parse_money("80"), source="sandbox", idempotency_key="b")
    ana_token = service.login(phone=ana.phone, password=PASSWORD).tokens.access_token

    # Her token with Bruno's id put in: the signature no longer matches.
    header, claims, signature = ana_token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["sub"] = bruno.user_id
    forged_claims = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        service.authenticate(access_token=f"{header}.{forged_claims}.{signature}")

    # What her token stands for reads and moves her money only; other people's are refused.
    as_ana = service.authenticate(access_token=ana_token)
    assert service.balance(as_ana).balance.minor == 0
    assert service.movements(as_ana, limit=10).movements == []
    with pytest.raises(InsufficientFunds):
        service.transfer(
            as_ana, to_phone=bruno.phone, amount=service.parse_money("1"), note=None,
            idempotency_key="a",
        )  # fmt: skip
    for attempt in (
        lambda: service.show_user(actor=as_ana, phone=bruno.phone),
        lambda: service.list_users(actor=as_ana, limit=10),
        lambda: service.set_wallet_status(
            actor=as_ana, phone=bruno.phone, status=AccountStatus.FROZEN
        ),
        lambda: service.verify_ledger(actor=as_ana),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert service.balance(bruno).balance.minor == 8000
    assert service.verify_ledger(actor=OPERATOR).ok
