"""An ATM killed (SIGKILL) after its dispenser presented the notes and before `complete` recorded
it, then started again: its start-up must not hand the customer their money back as well.

The child is a real process running `TerminalSession.pay_out` on the database; its dispenser
writes down that it presented the notes and the process kills itself at once, the narrowest
window there is between the cash leaving the machine and the books hearing of it. The parent
then opens the terminal again, as `mwallet terminal` does, and reads the books.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

import pytest

from mwallet.atm.reader import TypedCode
from mwallet.atm.session import TerminalSession, client_authority
from mwallet.bootstrap import Wallet
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from tests.integration.cash_books import check_cash_books
from tests.integration.workers import spawn_context
from tests.support import OPERATOR, make_admin, open_wallet, register

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multiprocess")]

PIN = "4729"
HANG_SECONDS = 60.0


class PresentsThenDies:
    """A dispenser whose notes leave the machine, and then the power goes."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def present(self, notes: Mapping[int, int]) -> None:
        Path(self.marker).write_text(repr(dict(notes)))
        os.kill(os.getpid(), signal.SIGKILL)


def atm_pays_out_and_dies(
    *, url: str, client_id: str, secret: str, code: str, marker: str
) -> None:  # pragma: no cover - runs in the child
    wallet = open_wallet(url)
    who = client_authority(wallet.service, client_id, secret)
    session = TerminalSession(wallet.service, who, name="ATM", dispenser=PresentsThenDies(marker))
    session.open()
    session.pay_out(session.redeem(TypedCode(code), PIN))


def test_an_atm_killed_after_presenting_the_notes_completes_at_start(
    wallet: Wallet, db_url: str, tmp_path: Path
) -> None:
    service = wallet.service
    admin = make_admin(service)
    added = service.add_atm(actor=admin, name="ATM 1")
    assert added.client is not None
    assert added.client_secret is not None
    service.load_cassettes(actor=admin, terminal_id=added.terminal.id, notes={2000: 10})
    carla = register(service, name="Carla Mendes")
    service.topup(
        carla, amount=service.parse_money("100"), source="sandbox", idempotency_key="fund"
    )
    issued = service.request_withdrawal(
        carla, amount=service.parse_money("60"), channel=Channel.ATM, pin=PIN,
        idempotency_key="w",
    )  # fmt: skip
    assert issued.code is not None
    marker = tmp_path / "presented"
    child = spawn_context().Process(
        target=atm_pays_out_and_dies,
        kwargs={
            "url": db_url, "client_id": added.client.id, "secret": added.client_secret,
            "code": issued.code, "marker": str(marker),
        },
        daemon=True,
    )  # fmt: skip
    child.start()
    child.join(timeout=HANG_SECONDS)
    assert child.exitcode == -signal.SIGKILL
    assert marker.read_text() == "{2000: 3}"  # three 20s left the machine

    # The ATM starts again.
    who = client_authority(service, added.client.id, added.client_secret)
    TerminalSession(service, who, name="ATM").open()

    (found,) = service.list_withdrawals(carla, limit=10)
    check_cash_books(wallet)
    assert service.verify_ledger(actor=OPERATOR).ok
    # Carla has her 60.00 in notes: her wallet must not have it back too.
    assert found.state is WithdrawalState.COMPLETED
    assert service.balance(carla).balance.minor == 4_000
    assert service.terminal_day(admin, terminal_id=added.terminal.id).cassettes == {2000: 7}
