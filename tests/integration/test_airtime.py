"""Airtime: the operator from the number's carrier data, the amount within what the operator
sells, the sandbox's answers by the number's last four digits, and the same held-until-answered
lifecycle as bills (on both databases)."""

from __future__ import annotations

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.domain.payments import Payment, PaymentState, Product
from mwallet.core.domain.users import Principal
from mwallet.core.errors import InvalidInput, InvalidPhoneNumber
from tests.support import OPERATOR, PASSWORD, register


def funded(wallet: Wallet, phone: str) -> Principal:
    service = wallet.service
    person = register(service, phone, "Ana Machava")
    service.topup(person, amount=service.parse_money("500"), source="sandbox",
                  idempotency_key=f"t{phone[1:]}")  # fmt: skip
    return service.login(phone=phone, password=PASSWORD).principal


def balances(wallet: Wallet, who: Principal) -> tuple[str, str]:
    found = wallet.service.balance(who)
    return found.balance.to_decimal_string(), found.available.to_decimal_string()


@pytest.mark.parametrize(
    ("phone", "operator"),
    [
        ("+258841110001", "airtime-vodacom"),
        ("+258851110001", "airtime-vodacom"),
        ("+258821110001", "airtime-mcel"),
        ("+258871110001", "airtime-movitel"),
    ],
)
def test_the_operator_comes_from_the_number(wallet: Wallet, phone: str, operator: str) -> None:
    ana = funded(wallet, "+258841234001")
    done = wallet.service.pay_airtime(
        ana,
        phone=phone,
        amount=wallet.service.parse_money("50"),
        idempotency_key=f"a{phone[1:]}",
    )
    assert (done.product, done.biller_id, done.reference) == (Product.AIRTIME, operator, phone)
    assert done.state is PaymentState.SUCCEEDED
    assert balances(wallet, ana) == ("450.00", "450.00")


def test_without_a_number_it_is_ones_own(wallet: Wallet) -> None:
    ana = funded(wallet, "+258861234002")
    done = wallet.service.pay_airtime(
        ana,
        phone=None,
        amount=wallet.service.parse_money("10"),
        idempotency_key="own",
    )
    assert (done.biller_id, done.reference) == ("airtime-movitel", "+258861234002")


@pytest.mark.parametrize(
    ("phone", "amount", "error", "says"),
    [
        ("+5511987654321", "50", InvalidInput, "no mobile operator here"),
        ("+25821000000", "50", InvalidInput, "no mobile operator here"),  # a landline
        ("not a number", "50", InvalidPhoneNumber, "international form"),
        ("+258841110009", "9.99", InvalidInput, "Vodacom takes 10.00 USD"),
        ("+258841110009", "5000.01", InvalidInput, "Vodacom takes"),
    ],
)
def test_a_bad_number_or_amount_moves_nothing(
    wallet: Wallet, phone: str, amount: str, error: type[Exception], says: str
) -> None:
    ana = funded(wallet, "+258841234003")
    with pytest.raises(error, match=says):
        wallet.service.pay_airtime(
            ana,
            phone=phone,
            amount=wallet.service.parse_money(amount),
            idempotency_key="bad",
        )
    assert balances(wallet, ana) == ("500.00", "500.00")
    assert wallet.service.list_payments(ana) == []


def test_declined_unknown_and_reconciled_by_the_numbers_last_digits(wallet: Wallet) -> None:
    service = wallet.service
    ana = funded(wallet, "+258841234004")

    def buy(phone: str) -> Payment:
        return service.pay_airtime(
            ana,
            phone=phone,
            amount=service.parse_money("20"),
            idempotency_key=phone[1:],
        )

    declined, late_yes, late_no = buy("+258841119991"), buy("+258841119992"), buy("+258841119993")
    assert [p.state for p in (declined, late_yes, late_no)] == [
        PaymentState.FAILED,
        PaymentState.UNKNOWN,
        PaymentState.UNKNOWN,
    ]
    assert balances(wallet, ana) == ("500.00", "460.00")
    result = service.reconcile_payments(actor=OPERATOR)
    assert (result.succeeded, result.failed, result.still_unknown) == (1, 1, 0)
    assert balances(wallet, ana) == ("480.00", "480.00")
    service.relay_notifications()
    kinds = [one.kind for one in service.inbox(ana)]
    assert kinds.count("airtime_failed") == 2
    assert kinds.count("airtime_bought") == 1
    assert service.verify_ledger(actor=OPERATOR).ok


def test_the_same_key_buys_once(wallet: Wallet) -> None:
    service = wallet.service
    ana = funded(wallet, "+258841234005")
    first = service.pay_airtime(ana, phone=None, amount=service.parse_money("25"),
                                idempotency_key="once")  # fmt: skip
    again = service.pay_airtime(ana, phone=None, amount=service.parse_money("25"),
                                idempotency_key="once")  # fmt: skip
    assert again.id == first.id
    assert balances(wallet, ana) == ("475.00", "475.00")
