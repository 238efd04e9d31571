"""Use cases of the books themselves: proving the ledger, freezing and closing wallets."""

from __future__ import annotations

from mwallet.core.domain.ledger import AccountStatus, LedgerReport, wallet_account_code
from mwallet.core.domain.users import normalize_phone
from mwallet.core.errors import UserNotFound, WalletClosed, WalletNotEmpty
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


def verify(uow: UnitOfWork) -> LedgerReport:
    """Recompute every balance from the postings and check every entry balances."""
    with uow.read_only():
        return uow.ledger.verify()


def set_wallet_status(
    uow: UnitOfWork, *, settings: InstanceSettings, phone: str, status: AccountStatus
) -> AccountStatus:
    """Freeze, unfreeze or close the wallet of `phone`. A closed wallet stays closed."""
    e164 = normalize_phone(phone, settings.region)
    with uow:
        user = uow.users.by_phone(e164)
        if user is None:
            raise UserNotFound(f"no user is registered to {e164}")
        wallet = uow.ledger.by_code(wallet_account_code(user.id))
        if wallet is None:  # pragma: no cover - registration opens the wallet with the user
            raise UserNotFound(f"{e164} has no wallet")
        if wallet.status is AccountStatus.CLOSED:
            raise WalletClosed(f"the wallet of {e164} is closed for good")
        if status is AccountStatus.CLOSED and wallet.balance.minor != 0:
            raise WalletNotEmpty(
                f"the wallet of {e164} still holds {wallet.balance}; empty it before closing"
            )
        uow.ledger.set_status(wallet.id, status)
        uow.commit()
        return status
