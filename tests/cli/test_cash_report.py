"""`mwallet admin report cash` of a terminal that has no account of its own (a `terminals` row a
restore or a hand-made script left without its `cash:` account), on a wallet whose books are in
Kuwaiti dinars (three decimals, where USD has two): its amounts are written in the instance's
currency, on both databases and through the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.harness import Cli, tamper
from tests.conftest import BACKENDS, empty_database
from tests.support import make_admin, open_wallet


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database of `backend` whose books are in KWD (this module's own)."""
    with empty_database(backend, tmp_path, "kwd.db") as url:
        with open_wallet(url) as wallet:
            wallet.service.init(currency="KWD")
        yield url


@pytest.mark.remote
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_terminal_without_an_account_is_reported_in_the_instance_currency(
    cli: Cli, db_url: str
) -> None:
    with open_wallet(db_url) as wallet:
        service = wallet.service
        atm = service.add_atm(actor=make_admin(service), name="ATM Baixa").terminal.id
        service.load_cassettes(actor=make_admin(service), terminal_id=atm, notes={20_000: 10})
    assert tamper(db_url, f"DELETE FROM accounts WHERE code = 'cash:{atm}'") == 1
    admin = cli.as_admin(same_door=True)

    (found,) = admin.ok_json("admin", "report", "cash")["terminals"]
    money = ("paid_out", "cash_in", "account_balance", "cassette_cash")
    assert [found[one] for one in money] == ["0.000", "0.000", "0.000", "200.000"]
    assert (found["terminal_id"], found["currency"]) == (atm, "KWD")
    csv_text = admin.ok("admin", "report", "cash", "--csv").stdout
    assert csv_text.splitlines()[1].endswith(",KWD,0,0.000,0,0.000,0.000,200.000")
    assert "200.000" in admin.ok("admin", "report", "cash").stdout
