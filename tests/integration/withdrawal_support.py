"""What the withdrawal and terminal tests share: a terminal and the principal acting as it, a
loaded ATM, an agent with float, a funded customer, and a withdrawal requested and redeemed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from mwallet.bootstrap import Wallet
from mwallet.core.domain.ledger import cash_account_code
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.terminals import Terminal
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import IssuedWithdrawal, Redemption
from tests.integration.cash_books import account_balance
from tests.support import PASSWORD, register

PIN = "4729"
NOTES = {5000: 10, 2000: 10}  # ten 50s and ten 20s, in cents


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Station:
    """A terminal and the principal that acts as it."""

    terminal: Terminal
    principal: Principal

    @property
    def id(self) -> str:
        return self.terminal.id


def new_atm(
    service: WalletService,
    admin: Principal,
    notes: dict[int, int] | None = None,
    name: str = "ATM 1",
) -> Station:
    """An ATM, its cassettes loaded, acting through its OAuth client's token."""
    added = service.add_atm(actor=admin, name=name)
    assert added.client is not None
    assert added.client_secret is not None
    if notes is None:
        notes = NOTES
    if notes:
        service.load_cassettes(actor=admin, terminal_id=added.terminal.id, notes=notes)
    token = service.client_token(client_id=added.client.id, client_secret=added.client_secret)
    return Station(added.terminal, service.authenticate(access_token=token.access_token))


def new_agent(
    service: WalletService, admin: Principal, float_: str = "0", name: str = "Agent Orange"
) -> Station:
    """A registered user made an agent, logged in again (as an agent), with some float."""
    person = register(service, name=name)
    if float_ != "0":
        fund(service, person, float_)
    added = service.add_agent(actor=admin, phone=person.phone)
    principal = service.login(phone=person.phone, password=PASSWORD).principal
    assert principal.role is Role.AGENT
    return Station(added.terminal, principal)


def fund(service: WalletService, person: Principal, amount: str) -> None:
    service.topup(
        person, amount=service.parse_money(amount), source="sandbox", idempotency_key=key()
    )


def customer(
    service: WalletService, funds: str = "500", name: str = "Carla Maria Mendes"
) -> Principal:
    person = register(service, name=name)
    fund(service, person, funds)
    return person


def withdraw(
    service: WalletService,
    person: Principal,
    amount: str = "60",
    *,
    channel: Channel = Channel.ATM,
    pin: str | None = PIN,
    idempotency_key: str | None = None,
    code: str | None = None,
) -> IssuedWithdrawal:
    return service.request_withdrawal(
        person,
        amount=service.parse_money(amount),
        channel=channel,
        pin=pin,
        idempotency_key=idempotency_key or key(),
        code=code,
    )


def code_of(issued: IssuedWithdrawal) -> str:
    assert issued.code is not None
    return issued.code


def redeem(
    service: WalletService, station: Station, issued: IssuedWithdrawal, pin: str = PIN
) -> Redemption:
    return service.redeem_withdrawal(station.principal, code=code_of(issued), pin=pin)


def usd(service: WalletService, amount: str) -> Money:
    return service.parse_money(amount)


def cash_of(wallet: Wallet, station: Station) -> int:
    """What an ATM paid out, in cents, as its cash account says."""
    return account_balance(wallet, cash_account_code(station.id))
