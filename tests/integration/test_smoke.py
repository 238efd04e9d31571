from mwallet.bootstrap import Wallet
from tests.support import OPERATOR, register


def test_a_transfer_moves_money_and_the_books_balance(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=service.parse_money("10"), source="sandbox", idempotency_key="t")
    service.transfer(
        ana,
        to_phone=bruno.phone,
        amount=service.parse_money("2.50"),
        note=None,
        idempotency_key="s",
    )
    assert service.balance(ana).balance.minor == 750
    assert service.balance(bruno).balance.minor == 250
    assert service.verify_ledger(actor=OPERATOR).ok
