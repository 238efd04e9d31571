"""Terminals count in the instance's currency: an ATM's cash account, its cassettes' notes and its
day are in the currency `init` chose, never an assumed USD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.money import Money
from mwallet.core.errors import InvalidInput
from tests.conftest import empty_database
from tests.support import (
    FAST_HASHER,
    START,
    TEST_KEYRING,
    make_admin,
)


@pytest.fixture
def yen_wallet(backend: str, tmp_path: Path) -> Iterator[Wallet]:
    """A fresh database initialised in JPY (no minor unit: a 1,000-yen note is 1000)."""
    with empty_database(backend, tmp_path, "yen.db") as url:
        wallet = build_wallet(
            url, hasher=FAST_HASHER, clock=FixedClock(START), secrets=TEST_KEYRING
        )
        try:
            wallet.service.init(currency="JPY")
            yield wallet
        finally:
            wallet.close()


def test_an_atm_holds_and_counts_the_instances_currency(yen_wallet: Wallet) -> None:
    service = yen_wallet.service
    admin = make_admin(service)
    atm = service.add_atm(actor=admin, name="ATM Baixa").terminal
    # A note is a whole number of yen: 1000 is one 1,000-yen note, and even a 1-yen "note" is
    # whole (in an assumed USD it would be one cent, refused).
    assert service.load_cassettes(actor=admin, terminal_id=atm.id, notes={1000: 5}) == {1000: 5}
    loaded = service.load_cassettes(actor=admin, terminal_id=atm.id, notes={1: 2})
    assert loaded == {1: 2, 1000: 5}
    with pytest.raises(InvalidInput, match="whole number of currency units"):
        service.load_cassettes(actor=admin, terminal_id=atm.id, notes={0: 1})
    day = service.terminal_day(admin, terminal_id=atm.id)
    assert day.cash == Money(5002, "JPY")
    assert day.paid_out == Money(0, "JPY")
