"""Use cases of the books themselves: proving the ledger, freezing and closing wallets."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from mwallet.core.clock import Clock
from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    AccountKind,
    AccountStatus,
    LedgerReport,
    fees_account_code,
    holds_account_code,
    wallet_account_code,
)
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.users import Principal, normalize_phone
from mwallet.core.errors import DataIntegrityError, UserNotFound, WalletClosed, WalletNotEmpty
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


def account_id(uow: UnitOfWork, code: str) -> int:
    """The id of an account that must exist (a wallet, the holds or fees of a currency...)."""
    found = uow.ledger.account_id(code)
    if found is None:
        raise DataIntegrityError(f"the account {code} does not exist")
    return found


def house_account(uow: UnitOfWork, kind: AccountKind, currency: str, now: datetime) -> int:
    """The id of the wallet's own holds or fees account of `currency`, opened on first use."""
    code = holds_account_code(currency) if kind is AccountKind.HOLD else fees_account_code(currency)
    found = uow.ledger.account_id(code)
    if found is not None:
        return found
    return uow.ledger.open_account(
        code=code, kind=kind, currency=currency, owner_user_id=None, created_at=now
    )


def verify(uow: UnitOfWork, clock: Clock, *, actor: Principal) -> LedgerReport:
    """Recompute every balance from the postings and check every entry balances."""
    authorize(uow, clock, actor, Permission.READ_BOOKS, "verify the ledger")
    now = clock.now()
    with uow.read_only():
        return uow.ledger.verify(now)


def set_wallet_status(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    phone: str,
    status: AccountStatus,
) -> AccountStatus:
    """Freeze, unfreeze or close the wallet of `phone`. A closed wallet stays closed."""
    authorize(uow, clock, actor, Permission.MANAGE_USERS, f"set wallets {status.value}")
    e164 = normalize_phone(phone, settings.region)
    with uow:
        user = uow.users.by_phone(e164)
        if user is None:
            raise UserNotFound(f"no user is registered to {e164}")
        code = wallet_account_code(user.id)
        wallet_id = uow.ledger.account_id(code)
        if wallet_id is None:  # pragma: no cover - registration opens the wallet with the user
            raise UserNotFound(f"{e164} has no wallet")
        if not uow.ledger.set_status(wallet_id, status):
            _refuse_status_change(uow, code, e164)
        if status is AccountStatus.CLOSED:
            _check_closable(uow, user.id, e164, settings.currency)
        now = clock.now()
        uow.outbox.add(
            events.wallet_status_changed(
                new_id(now), user_id=user.id, phone=e164, status=status.value
            ),
            now,
        )
        uow.audit.append(
            AuditEvent("wallet.status_changed", actor.user_id, user.id, {"status": status.value}),
            now,
        )
        uow.commit()
        return status


def _check_closable(uow: UnitOfWork, user_id: str, phone: str, currency: str) -> None:
    """Refuse to close a wallet money may yet have to come back to: a closed one takes nothing,
    ever. Checked after the status UPDATE, which holds the wallet's row: a withdrawal or a
    payment (it posts to that row first; a top-up and a redeem at an agent lock it) either
    committed before, and is seen here, or waits for this one and finds the wallet closed."""
    held = uow.withdrawals.held_for(user_id) + uow.payments.held_for(user_id)
    if held:
        raise WalletNotEmpty(
            f"the wallet of {phone} has {Money(held, currency).format()} held for withdrawals "
            "or payments; they must end before it closes"
        )
    if uow.payments.topups_unsettled(user_id):
        raise WalletNotEmpty(
            f"the wallet of {phone} has a top-up its provider has not settled yet; it must end "
            "before the wallet closes"
        )
    # An agent is paid into this wallet for the cash they hand over: a withdrawal open at their
    # counter could then never complete (nor, once dispensing, be reversed).
    counter = uow.terminals.by_agent(user_id)
    if counter is not None and uow.withdrawals.left_open_at(counter.id):
        raise WalletNotEmpty(
            f"the wallet of {phone} is owed for withdrawals being paid out at their counter; "
            "they must end before it closes"
        )


def _refuse_status_change(uow: UnitOfWork, code: str, phone: str) -> NoReturn:
    wallet = uow.ledger.by_code(code)
    if wallet is None or wallet.status is AccountStatus.CLOSED:
        raise WalletClosed(f"the wallet of {phone} is closed for good")
    raise WalletNotEmpty(
        f"the wallet of {phone} still holds {wallet.balance}; empty it before closing"
    )
