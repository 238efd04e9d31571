"""The ATM service over HTTP, on both databases: a customer asks for a withdrawal and may cancel
it; an ATM (its client-credentials token) or an agent (their own login) checks the code or the QR
and the PIN, then confirms the cash was paid or reverses it. Refusals are 4xx problems that change
nothing; afterwards the ledger verifies and the holds and cash accounts match the withdrawals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core.domain.users import Principal
from tests.integration.cash_books import check_cash_books
from tests.integration.http_support import (
    balance,
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    is_problem,
    person,
)
from tests.integration.withdrawal_support import PIN, Station, cash_of, new_agent
from tests.support import OPERATOR, PASSWORD, make_admin

WRONG_PIN = "8531"


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    check_cash_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


def atm_auth(wallet: Wallet, admin: Principal) -> tuple[Station, dict[str, str]]:
    """An ATM with loaded cassettes and the Bearer header of its client-credentials token."""
    service = wallet.service
    added = service.add_atm(actor=admin, name="ATM Baixa")
    assert added.client is not None
    assert added.client_secret is not None
    service.load_cassettes(actor=admin, terminal_id=added.terminal.id, notes={5000: 10, 2000: 10})
    token = service.client_token(client_id=added.client.id, client_secret=added.client_secret)
    station = Station(added.terminal, service.authenticate(access_token=token.access_token))
    return station, {"Authorization": f"Bearer {token.access_token}"}


def agent_auth(client: TestClient, wallet: Wallet, admin: Principal) -> dict[str, str]:
    """An agent, logged in over HTTP after being made one."""
    agent = new_agent(wallet.service, admin)
    tokens = client.post("/auth/login", json={"phone": agent.principal.phone,
                                              "password": PASSWORD}).json()  # fmt: skip
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def ask(client: TestClient, who: dict[str, Any], key: str, **body: Any) -> Any:
    return client.post("/atm/withdrawal-request", json={"amount": "60", "pin": PIN, **body},
                       headers={**who["auth"], "Idempotency-Key": key})  # fmt: skip


def test_a_withdrawal_paid_out_at_an_atm(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    carla = person(client, "Carla Maria Mendes")
    fund(wallet, carla, "500")
    atm, terminal = atm_auth(wallet, admin)

    issued = ask(client, carla, "w-1")
    assert issued.status_code == 201, issued.text
    shown = issued.json()
    assert (shown["amount"], shown["state"], shown["channel"]) == ("60.00", "pending", "atm")
    assert len(shown["code"]) == 10
    assert shown["pin"] == PIN
    assert shown["qr_payload"].startswith("MW1:")
    assert balance(client, carla) == ("500.00", "440.00")  # held, not gone

    # The same key and body: the same withdrawal, its secrets shown only the first time.
    again = ask(client, carla, "w-1")
    assert again.status_code == 201
    assert again.json()["withdrawal_id"] == shown["withdrawal_id"]
    assert (again.json()["code"], again.json()["pin"], again.json()["qr_payload"]) == (
        None, None, None,
    )  # fmt: skip
    is_problem(ask(client, carla, "w-1", amount="70"), 422, "idempotency_key_reused")

    checked = client.post("/atm/validate-token", json={"code": shown["code"], "pin": PIN},
                          headers=terminal)  # fmt: skip
    assert checked.status_code == 200, checked.text
    found = checked.json()
    assert found["withdrawal_id"] == shown["withdrawal_id"]
    assert (found["amount"], found["state"]) == ("60.00", "authorized")
    assert found["customer_name"] == "Carla M."
    assert found["notes"] == [{"denomination": "20.00", "count": 3}]  # 60 from {50, 20}

    url = f"/atm/withdrawals/{shown['withdrawal_id']}"
    paid = client.post(f"{url}/confirm", headers=terminal)
    assert (paid.status_code, paid.json()["state"]) == (200, "completed")
    assert paid.json()["terminal_id"] == atm.id
    assert balance(client, carla) == ("440.00", "440.00")
    assert cash_of(wallet, atm) == 6000
    # Settled: neither a second confirmation nor a reversal moves anything.
    is_problem(client.post(f"{url}/confirm", headers=terminal), 409, "withdrawal_not_pending")
    is_problem(client.post(f"{url}/reverse", headers=terminal), 409, "withdrawal_not_pending")

    listed = client.get("/atm/withdrawals", headers=carla["auth"])
    assert [one["state"] for one in listed.json()["withdrawals"]] == ["completed"]


def cassettes(wallet: Wallet, station: Station) -> dict[int, int]:
    found = {
        terminal.id: notes for terminal, notes in wallet.service.list_terminals(actor=OPERATOR)
    }
    return found[station.id]


def test_an_atm_dispenses_before_presenting_and_then_cannot_pay_twice(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    carla = person(client, "Carla Maria Mendes")
    fund(wallet, carla, "500")
    atm, terminal = atm_auth(wallet, admin)

    def dispensed(key: str) -> str:
        issued = ask(client, carla, key).json()
        checked = client.post("/atm/validate-token", json={"code": issued["code"], "pin": PIN},
                              headers=terminal)  # fmt: skip
        assert checked.status_code == 200, checked.text
        url = f"/atm/withdrawals/{issued['withdrawal_id']}"
        marked = client.post(f"{url}/dispense", headers=terminal)
        assert (marked.status_code, marked.json()["state"]) == (200, "dispensing")
        is_problem(client.post(f"{url}/dispense", headers=terminal), 409, "withdrawal_not_pending")
        return url

    # The notes leave the cassettes at dispense; a reverse without the dispenser's word that it
    # presented none is refused (the customer may hold the cash), and so is the customer's cancel.
    url = dispensed("w-d1")
    assert cassettes(wallet, atm) == {5000: 10, 2000: 7}
    is_problem(client.post(f"{url}/reverse", headers=terminal), 409, "withdrawal_not_pending")
    is_problem(client.post(f"{url}/reverse", json={"none_presented": False}, headers=terminal),
               409, "withdrawal_not_pending")  # fmt: skip
    is_problem(client.post(f"{url}/cancel", headers=carla["auth"]), 409, "withdrawal_not_pending")
    is_problem(client.post(f"{url}/reverse", json={"none_presented": "yes"}, headers=terminal),
               400, "wrong_type")  # fmt: skip
    assert balance(client, carla) == ("500.00", "440.00")
    paid = client.post(f"{url}/confirm", headers=terminal)
    assert (paid.status_code, paid.json()["state"]) == (200, "completed")
    assert cassettes(wallet, atm) == {5000: 10, 2000: 7}  # taken once, at dispense
    assert (balance(client, carla), cash_of(wallet, atm)) == (("440.00", "440.00"), 6000)

    # The dispenser presented nothing: on its word the notes go back and so does the hold.
    url = dispensed("w-d2")
    assert cassettes(wallet, atm) == {5000: 10, 2000: 4}
    back = client.post(f"{url}/reverse", json={"none_presented": True}, headers=terminal)
    assert (back.status_code, back.json()["state"]) == (200, "reversed")
    assert cassettes(wallet, atm) == {5000: 10, 2000: 7}
    assert (balance(client, carla), cash_of(wallet, atm)) == (("440.00", "440.00"), 6000)


def at_an_agent(
    client: TestClient, wallet: Wallet, admin: Principal, key: str, *, by: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any], Any]:
    """Carla (100.00) asks for 25.00 at an agent, who checks it `by` its "code" or its "qr", and
    the PIN: Carla, the agent's header, the withdrawal as issued and the agent's check of it."""
    carla = person(client, "Carla Maria Mendes")
    fund(wallet, carla, "100")
    agent = agent_auth(client, wallet, admin)
    issued = ask(client, carla, key, channel="agent", amount="25").json()
    secret = issued["code"] if by == "code" else issued["qr_payload"]
    checked = client.post("/atm/validate-token", json={by: secret, "pin": PIN}, headers=agent)
    assert checked.status_code == 200, checked.text
    return carla, agent, issued, checked


def test_an_agent_who_handed_the_cash_over_cannot_reverse(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    carla, agent, issued, _ = at_an_agent(client, wallet, admin, "w-3", by="code")
    url = f"/atm/withdrawals/{issued['withdrawal_id']}"
    handed = client.post(f"{url}/dispense", headers=agent)
    assert (handed.status_code, handed.json()["state"]) == (200, "dispensing")
    for body in (None, {"none_presented": True}):
        is_problem(client.post(f"{url}/reverse", json=body, headers=agent),
                   409, "withdrawal_not_pending")  # fmt: skip
    assert balance(client, carla) == ("100.00", "75.00")
    paid = client.post(f"{url}/confirm", headers=agent)
    assert (paid.status_code, paid.json()["state"]) == (200, "completed")
    assert balance(client, carla) == ("75.00", "75.00")


def test_an_agent_redeems_a_qr_and_reverses(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    carla, agent, issued, checked = at_an_agent(client, wallet, admin, "w-2", by="qr")
    assert (checked.json()["notes"], checked.json()["channel"]) == (None, "agent")
    back = client.post(f"/atm/withdrawals/{issued['withdrawal_id']}/reverse", headers=agent)
    assert (back.status_code, back.json()["state"]) == (200, "reversed")
    assert balance(client, carla) == ("100.00", "100.00")


def test_the_customer_cancels_and_lists_newest_first(client: TestClient, wallet: Wallet) -> None:
    carla, bruno = person(client, "Carla Mendes"), person(client, "Bruno Tembe")
    fund(wallet, carla, "300")
    first = ask(client, carla, "w-3").json()
    second = ask(client, carla, "w-4", amount="20", pin=None).json()
    assert second["pin"] is not None  # one was drawn for her
    url = f"/atm/withdrawals/{first['withdrawal_id']}/cancel"
    is_problem(client.post(url, headers=bruno["auth"]), 404, "withdrawal_not_found")
    cancelled = client.post(url, headers=carla["auth"])
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    is_problem(client.post(url, headers=carla["auth"]), 409, "withdrawal_not_pending")
    listed = client.get("/atm/withdrawals?limit=5", headers=carla["auth"]).json()["withdrawals"]
    assert [one["withdrawal_id"] for one in listed] == [
        second["withdrawal_id"], first["withdrawal_id"],
    ]  # fmt: skip
    assert balance(client, carla) == ("300.00", "280.00")
    is_problem(client.get("/atm/withdrawals?limit=x", headers=carla["auth"]), 400, "invalid_input")
    is_problem(client.get("/atm/withdrawals?limit=0", headers=carla["auth"]), 400, "invalid_input")
    is_problem(client.get("/atm/withdrawals"), 401, "not_authenticated")


def test_refusals_are_problems_and_change_nothing(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    carla = person(client, "Carla Mendes")
    fund(wallet, carla, "100")
    _, terminal = atm_auth(wallet, admin)
    is_problem(ask(client, carla, "r-1", channel="bank"), 400, "invalid_input")
    is_problem(ask(client, carla, "r-2", amount="2000"), 422, "invalid_amount")
    is_problem(ask(client, carla, "r-3", pin="1111"), 400, "invalid_input")  # too easy to guess
    is_problem(
        client.post("/atm/withdrawal-request", json={"amount": "60"}, headers=carla["auth"]),
        400, "idempotency_key_missing",
    )  # fmt: skip
    is_problem(
        client.post("/atm/withdrawal-request", content=b'{"amount": 60.0}',
                    headers={**carla["auth"], "Idempotency-Key": "r-4",
                             "Content-Type": "application/json"}),
        422, "float_amount",
    )  # fmt: skip
    assert balance(client, carla) == ("100.00", "100.00")

    issued = ask(client, carla, "r-5").json()
    validate = "/atm/validate-token"
    is_problem(client.post(validate, json={"code": issued["code"], "pin": PIN},
                           headers=carla["auth"]), 403, "permission_denied")  # fmt: skip
    is_problem(client.post(validate, json={"pin": PIN}, headers=terminal), 400, "invalid_input")
    is_problem(
        client.post(validate, json={"code": issued["code"], "qr": issued["qr_payload"],
                                    "pin": PIN}, headers=terminal),
        400, "invalid_input",
    )  # fmt: skip
    is_problem(client.post(validate, json={"code": "0000000000", "pin": PIN}, headers=terminal),
               404, "unknown_withdrawal_code")  # fmt: skip
    is_problem(client.post(validate, json={"code": issued["code"], "pin": WRONG_PIN},
                           headers=terminal), 409, "wrong_pin")  # fmt: skip
    is_problem(client.post(validate, json={"code": issued["code"], "pin": "12"},
                           headers=terminal), 400, "invalid_input")  # fmt: skip
    is_problem(client.post(validate, json={"code": issued["code"]}, headers=terminal), 400,
               "missing_fields")  # fmt: skip
    url = f"/atm/withdrawals/{issued['withdrawal_id']}"
    # Not authorized at this terminal yet; a customer may not confirm; a body must be an object.
    is_problem(client.post(f"{url}/confirm", headers=terminal), 409, "withdrawal_not_pending")
    is_problem(client.post(f"{url}/confirm", headers=carla["auth"]), 403, "permission_denied")
    is_problem(client.post(f"{url}/cancel", json={"why": "x"}, headers=carla["auth"]), 400,
               "unknown_fields")  # fmt: skip
    assert balance(client, carla) == ("100.00", "40.00")  # still held, once
