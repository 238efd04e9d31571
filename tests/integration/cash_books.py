"""The cash books' invariants, checked after every withdrawal and terminal test: the ledger
verifies and sums to zero; the holds account holds exactly the amounts and fees of the
withdrawals still pending or authorized; the fees account holds the fees of those completed; and
each ATM's cash account holds what it paid out."""

from __future__ import annotations

from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.domain.ledger import cash_account_code, fees_account_code, holds_account_code
from tests.support import OPERATOR


def account_balance(wallet: Wallet, code: str) -> int:
    with wallet.engine.connect() as conn:
        found = conn.execute(
            text("SELECT balance FROM accounts WHERE code = :code"), {"code": code}
        ).scalar_one_or_none()
    return 0 if found is None else int(found)


def check_cash_books(wallet: Wallet, currency: str = "USD") -> None:
    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert all(total == 0 for total in report.totals_by_currency.values())
    with wallet.engine.connect() as conn:
        held = conn.execute(
            text(
                "SELECT coalesce(sum(amount + fee), 0) FROM withdrawals "
                "WHERE state IN ('pending', 'authorized', 'dispensing')"
            )
        ).scalar_one()
        earned = conn.execute(
            text("SELECT coalesce(sum(fee), 0) FROM withdrawals WHERE state = 'completed'")
        ).scalar_one()
        paid_out = conn.execute(
            text(
                "SELECT t.id, coalesce(sum(w.amount), 0) FROM terminals t "
                "LEFT JOIN withdrawals w ON w.terminal_id = t.id AND w.state = 'completed' "
                "WHERE t.kind = 'atm' GROUP BY t.id"
            )
        ).all()
    assert account_balance(wallet, holds_account_code(currency)) == int(held)
    assert account_balance(wallet, fees_account_code(currency)) == int(earned)
    for terminal_id, total in paid_out:
        assert account_balance(wallet, cash_account_code(terminal_id)) == int(total)
