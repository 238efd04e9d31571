"""Top-ups from a card provider on the payment machinery (both databases): credited only once
the provider approved; a declined or timed-out charge credits nothing and holds nothing; a late
approval (reconciliation or callback) credits exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ids import made_at
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.payments import (
    Payment,
    PaymentState,
    Product,
    ProviderAnswer,
    ProviderOutcome,
    luhn_digit,
)
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    InvalidInput,
    UnknownFundingSource,
    WalletClosed,
    WalletFrozen,
    WalletNotEmpty,
)
from tests.support import OPERATOR, register


def card(prefix: str) -> str:
    body = f"{prefix}11111111111"
    return body + luhn_digit(body)


def balances(wallet: Wallet, who: Principal) -> tuple[str, str]:
    found = wallet.service.balance(who)
    return found.balance.to_decimal_string(), found.available.to_decimal_string()


def charge(wallet: Wallet, who: Principal, number: str, amount: str = "40") -> Payment:
    service = wallet.service
    return service.top_up_from(
        who, source="card", reference=number, amount=service.parse_money(amount),
        idempotency_key=f"c{number}{amount}",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    assert wallet.service.verify_ledger(actor=OPERATOR).ok
    with wallet.engine.connect() as conn:
        credited = conn.execute(
            text(
                "SELECT coalesce(sum(amount), 0) FROM payments WHERE product = 'topup'"
                " AND state = 'succeeded'"
            )
        ).scalar_one()
        source = conn.execute(
            text("SELECT balance FROM accounts WHERE code = 'funding:card:USD'")
        ).scalar_one()
    assert -int(source) == int(credited)  # the card source paid in exactly the approved ones


def test_an_approved_card_top_up_credits_once(wallet: Wallet) -> None:
    ana = register(wallet.service, name="Ana Machava")
    done = charge(wallet, ana, card("4111"))
    assert (done.product, done.state) == (Product.TOPUP, PaymentState.SUCCEEDED)
    assert balances(wallet, ana) == ("40.00", "40.00")
    again = charge(wallet, ana, card("4111"))  # the same key: the same top-up
    assert again.id == done.id
    assert balances(wallet, ana) == ("40.00", "40.00")
    (line,) = wallet.service.movements(ana, limit=10).movements
    assert (line.type, line.counterparty) == ("topup", "card")


def test_a_declined_card_credits_nothing(wallet: Wallet) -> None:
    ana = register(wallet.service, name="Ana Machava")
    done = charge(wallet, ana, card("9991"))
    assert done.state is PaymentState.FAILED
    assert balances(wallet, ana) == ("0.00", "0.00")


@pytest.mark.parametrize(
    ("prefix", "state", "credited"),
    [("9992", PaymentState.SUCCEEDED, "40.00"), ("9993", PaymentState.FAILED, "0.00"),
     ("9994", PaymentState.UNKNOWN, "0.00")],
)  # fmt: skip
def test_a_timeout_credits_nothing_until_the_provider_says(
    wallet: Wallet, prefix: str, state: PaymentState, credited: str
) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")
    done = charge(wallet, ana, card(prefix))
    assert done.state is PaymentState.UNKNOWN
    assert balances(wallet, ana) == ("0.00", "0.00")  # nothing credited, nothing held
    service.reconcile_payments(actor=OPERATOR)
    service.reconcile_payments(actor=OPERATOR)  # a second pass changes nothing
    settled, _ = service.payment(ana, payment_id=done.id)
    assert settled.state is state
    assert balances(wallet, ana) == (credited, credited)


def test_a_late_callback_credits_once(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")
    done = charge(wallet, ana, card("9994"))
    yes = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="LATE")
    assert service.settle_payment(payment_id=done.id, answer=yes) is not None
    assert service.settle_payment(payment_id=done.id, answer=yes) is None
    assert balances(wallet, ana) == ("40.00", "40.00")
    service.relay_notifications()
    assert [one.kind for one in service.inbox(ana)].count("topup") == 1


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_a_wallet_that_cannot_be_credited_is_not_charged(
    wallet: Wallet, status: AccountStatus
) -> None:
    """The card would be charged and the wallet never credited (a closed one never can be)."""
    service = wallet.service
    ana = register(service, name="Ana Machava")
    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=status)
    with pytest.raises(WalletFrozen if status is AccountStatus.FROZEN else WalletClosed):
        charge(wallet, ana, card("4111"))
    with wallet.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payments")).scalar_one() == 0


def test_a_wallet_with_a_top_up_still_unsettled_cannot_be_closed(wallet: Wallet) -> None:
    """Closed, it could never take the money the card provider may yet say it charged."""
    service = wallet.service
    ana = register(service, name="Ana Machava")
    waiting = charge(wallet, ana, card("9994"))  # no answer yet: unknown
    with pytest.raises(WalletNotEmpty, match="top-up"):
        service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.CLOSED)
    yes = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="LATE")
    assert service.settle_payment(payment_id=waiting.id, answer=yes) is not None
    assert balances(wallet, ana) == ("40.00", "40.00")


def test_bad_cards_and_sources_are_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")
    with pytest.raises(InvalidInput, match="check digit"):
        charge(wallet, ana, card("4111")[:-1] + "0" if not card("4111").endswith("0") else "1")
    with pytest.raises(UnknownFundingSource, match="available: sandbox, card"):
        service.top_up_from(ana, source="aguas-maputo", reference="12345674",
                            amount=service.parse_money("5"), idempotency_key="nope")  # fmt: skip
    with pytest.raises(InvalidInput, match="takes"):
        charge(wallet, ana, card("4111"), amount="10000.01")
    assert balances(wallet, ana) == ("0.00", "0.00")


def test_a_late_top_up_s_entry_has_an_id_of_its_own_time(wallet: Wallet, clock: FixedClock) -> None:
    """The reports find a window's entries by their ids: the entry made when the approval came
    is not given the payment's id, made when the top-up was asked for."""
    service = wallet.service
    ana = register(service, name="Ana Machava")
    done = charge(wallet, ana, card("9994"))
    clock.advance(timedelta(minutes=5))
    yes = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="LATE")
    assert service.settle_payment(payment_id=done.id, answer=yes) is not None
    with wallet.engine.connect() as conn:
        entry_id, topup_id = conn.execute(
            text(
                "SELECT journal_entries.id, topups.id FROM journal_entries"
                " JOIN topups ON topups.id = journal_entries.id WHERE memo = :memo"
            ),
            {"memo": f"top-up {done.id}"},
        ).one()
    assert entry_id != done.id
    assert made_at(entry_id, clock.now())
    assert topup_id == entry_id
