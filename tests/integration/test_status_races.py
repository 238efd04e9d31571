"""A wallet's status changes racing money movements on PostgreSQL (READ COMMITTED).

Each test holds a real transfer's transaction open just before COMMIT (its row locks held),
starts the status change in another thread, waits until PostgreSQL shows it blocked on a lock,
then lets the transfer commit. The status change must judge the wallet as it is after the
transfer, not as it was when it first looked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import SystemClock
from mwallet.core.domain.ledger import AccountStatus, wallet_account_code
from mwallet.core.errors import WalletClosed, WalletNotEmpty
from mwallet.core.services import wallets
from mwallet.core.services.unit_of_work import UnitOfWork
from tests.support import OPERATOR, TEST_KEYRING, register

# PostgreSQL only: SQLite serialises writers with BEGIN IMMEDIATE, so these interleavings cannot
# happen there.
pytestmark = [
    pytest.mark.xdist_group("status-races"),
    pytest.mark.parametrize("backend", ["postgresql"]),
]

WAIT = 20.0  # seconds: an upper bound for each step, never a pause


class HeldCommit:
    """A real unit of work whose commit waits for `go` while its locks stay held."""

    def __init__(self, inner: UnitOfWork, reached: threading.Event, go: threading.Event) -> None:
        self.inner, self.reached, self.go = inner, reached, go

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> HeldCommit:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)

    def commit(self) -> None:
        self.reached.set()
        assert self.go.wait(WAIT)
        self.inner.commit()


def _blocked_on_a_lock(wallet: Wallet) -> bool:
    with wallet.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return int(waiting) > 0


def _race(wallet: Wallet, hold: Callable[[UnitOfWork], None], change: Callable[[], object]) -> Any:
    """Run `hold` with its commit held, then `change` until it blocks, then release; `change`'s
    outcome (its return value or the exception it raised) is returned."""
    reached, go = threading.Event(), threading.Event()
    factory = wallet.service._uow  # the same factory the service uses
    holder = threading.Thread(target=hold, args=(HeldCommit(factory(), reached, go),))
    holder.start()
    assert reached.wait(WAIT), "the held transaction never reached its commit"
    outcome: dict[str, Any] = {}

    def run_change() -> None:
        try:
            outcome["result"] = change()
        except Exception as exc:  # the outcome under test
            outcome["result"] = exc

    changer = threading.Thread(target=run_change)
    changer.start()
    for _ in range(int(WAIT * 100)):
        if _blocked_on_a_lock(wallet) or not changer.is_alive():
            break
        threading.Event().wait(0.01)  # polling a state, bounded by WAIT
    go.set()
    holder.join(WAIT)
    changer.join(WAIT)
    assert not holder.is_alive()
    assert not changer.is_alive()
    return outcome["result"]


def _status(wallet: Wallet, user_id: str) -> tuple[str, int]:
    with wallet.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, balance FROM accounts WHERE code = :code"),
            {"code": wallet_account_code(user_id)},
        ).one()
    return str(row[0]), int(row[1])


def test_a_wallet_receiving_money_meanwhile_is_not_closed(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=service.parse_money("50"), source="sandbox", idempotency_key="t")

    def transfer_in(uow: UnitOfWork) -> None:
        wallets.transfer(
            uow, SystemClock(), TEST_KEYRING, settings=service.settings, sender=ana,
            to_phone=bruno.phone,
            amount=service.parse_money("30"), note=None, idempotency_key="in",
        )  # fmt: skip

    outcome = _race(
        wallet,
        transfer_in,
        lambda: service.set_wallet_status(
            actor=OPERATOR, phone=bruno.phone, status=AccountStatus.CLOSED
        ),
    )

    assert isinstance(outcome, WalletNotEmpty)
    assert _status(wallet, bruno.user_id) == ("active", 3000)
    assert service.verify_ledger(actor=OPERATOR).ok


def test_a_wallet_closed_meanwhile_is_not_reopened(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.FROZEN)

    def close(uow: UnitOfWork) -> None:
        from mwallet.core.services import ledger

        ledger.set_wallet_status(
            uow, SystemClock(), actor=OPERATOR, settings=service.settings, phone=ana.phone,
            status=AccountStatus.CLOSED,
        )  # fmt: skip

    outcome = _race(
        wallet,
        close,
        lambda: service.set_wallet_status(
            actor=OPERATOR, phone=ana.phone, status=AccountStatus.ACTIVE
        ),
    )

    assert isinstance(outcome, WalletClosed)
    assert _status(wallet, ana.user_id) == ("closed", 0)
