"""A hand-made history over three months (January to March 2026) for the statistics and reports
tests, with every number they check worked out here by hand (cents).

January 15 (the test clock's start)
    top-ups: Ana 500.00, Bruno 100.00, the agent 200.00 (float)
    Ana -> Bruno 40.00, Ana -> Carla 10.00, Bruno -> Ana 5.00
    Ana pays water 20.00 (approved)
    Ana withdraws 60.00 at the ATM, fee 0.50: paid out (three 20s)
February 14
    Ana asks for 20.00 and cancels (released: not money out)
    Ana pays a bill of 15.00 that is declined (returned: not money out)
    Ana -> Bruno 25.00; Ana buys 10.00 of airtime (approved)
March 16
    Ana asks for 40.00 at the ATM (fee 0.50): pending, held
    Ana pays a bill of 12.00 the provider never answers: unknown, held
    the agent takes 30.00 cash from Ana (cash-in)

Ana's balance: 500 - 40 - 10 + 5 - 20 - 60.50 - 25 - 10 - 40.50 - 12 + 30 = 317.00
= in 535.00 - out 165.50 - held 52.50.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.payments import PaymentState, luhn_digit
from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import Movement, flat
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from tests.integration.withdrawal_support import Station, new_agent, new_atm, redeem, withdraw
from tests.support import PASSWORD, make_admin, register

DAYS_30 = timedelta(days=30)


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def water(prefix: str = "1234") -> str:
    """An Águas da Região de Maputo reference (7 digits and a Luhn digit); the sandbox answers by
    the first four: 9991 declines, 9994 never answers, anything else is approved."""
    body = f"{prefix}567"
    return body + luhn_digit(body)


@dataclass(frozen=True)
class History:
    admin: Principal
    ana: Principal
    bruno: Principal
    carla: Principal
    atm: Station
    agent: Station


def build(wallet: Wallet, clock: FixedClock) -> History:
    service = wallet.service
    money = service.parse_money
    admin = make_admin(service)
    service.set_tariff(actor=admin, movement=Movement.WITHDRAWAL_ATM, tariff=flat(50))
    atm = new_atm(service, admin)
    agent = new_agent(service, admin, float_="200")
    ana = register(service, "+258841234501", "Ana Machava")
    bruno = register(service, "+258841234502", "Bruno Tembe")
    carla = register(service, "+258841234503", "Carla Nhantumbo")

    def send(sender: Principal, to: Principal, amount: str) -> None:
        service.transfer(sender, to_phone=to.phone, amount=money(amount), note=None,
                         idempotency_key=key())  # fmt: skip

    def bill(reference: str, amount: str) -> PaymentState:
        return service.pay_bill(ana, biller_id="aguas-maputo", reference=reference,
                                amount=money(amount), idempotency_key=key()).state  # fmt: skip

    # January
    for person, amount in ((ana, "500"), (bruno, "100")):
        service.topup(person, amount=money(amount), source="sandbox", idempotency_key=key())
    send(ana, bruno, "40")
    send(ana, carla, "10")
    send(bruno, ana, "5")
    assert bill(water(), "20") is PaymentState.SUCCEEDED
    issued = withdraw(service, ana, "60")
    redeem(service, atm, issued)
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)

    clock.advance(DAYS_30)  # February 14
    cancelled = withdraw(service, ana, "20")
    service.cancel_withdrawal(ana, withdrawal_id=cancelled.withdrawal.id)
    assert bill(water("9991"), "15") is PaymentState.FAILED
    send(ana, bruno, "25")
    service.pay_airtime(ana, phone="+258841110001", amount=money("10"), idempotency_key=key())

    clock.advance(DAYS_30)  # March 16
    withdraw(service, ana, "40", channel=Channel.ATM)
    assert bill(water("9994"), "12") is PaymentState.UNKNOWN
    service.cash_in(agent.principal, to_phone=ana.phone, amount=money("30"), idempotency_key=key())
    return History(admin, ana, bruno, carla, atm, agent)


def auditor(wallet: Wallet, admin: Principal) -> Principal:
    person = register(wallet.service, name="Audrey Auditor")
    wallet.service.set_role(actor=admin, phone=person.phone, role=Role.AUDITOR)
    return wallet.service.login(phone=person.phone, password=PASSWORD).principal
