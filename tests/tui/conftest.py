"""The terminal app's fixtures: a kiosk (a wallet with a customer and a loaded ATM), and books
that must stay sound after every test: the ledger verifies, and the holds account holds exactly
the withdrawals still pending or authorized."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import holds_account_code
from tests.support import OPERATOR, make_admin, register
from tests.tui.harness import ATM_NAME, NOTES, Kiosk, usd


@pytest.fixture
def kiosk(wallet: Wallet, clock: FixedClock) -> Kiosk:
    service = wallet.service
    admin = make_admin(service)
    customer = register(service, name="Ana Machava")
    service.topup(customer, amount=usd("500"), source="sandbox", idempotency_key="t-1")
    atm = service.add_atm(actor=admin, name=ATM_NAME)
    service.load_cassettes(actor=admin, terminal_id=atm.terminal.id, notes=NOTES)
    return Kiosk(wallet, clock, admin, customer, atm)


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    with wallet.engine.connect() as conn:
        held = conn.execute(
            text(
                "SELECT coalesce(sum(amount + fee), 0) FROM withdrawals "
                "WHERE state IN ('pending', 'authorized', 'dispensing')"
            )
        ).scalar_one()
        in_holds = conn.execute(
            text("SELECT coalesce(sum(balance), 0) FROM accounts WHERE code = :code"),
            {"code": holds_account_code("USD")},
        ).scalar_one()
    assert int(in_holds) == int(held)
