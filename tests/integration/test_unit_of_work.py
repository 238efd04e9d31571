"""`SqlUnitOfWork`'s repositories on both databases: one per transaction, never used after it."""

from __future__ import annotations

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from mwallet.core.domain.ledger import wallet_account_code
from tests.support import PASSWORD, new_phone


def test_a_repository_belongs_to_its_transaction(wallet: Wallet) -> None:
    service = wallet.service
    user = service.register(
        phone=new_phone(), display_name="Ana", email=None, password=PASSWORD, idempotency_key="r"
    )
    uow = SqlUnitOfWork(wallet.engine)
    with uow.read_only():
        first = uow.ledger
        assert uow.ledger is first  # found again, not made again, in the same transaction
        assert first.by_code(wallet_account_code(user.id)) is not None
    with pytest.raises(RuntimeError, match="ledger repository is used outside its unit of work"):
        _ = uow.ledger
    with uow.read_only():
        second = uow.ledger
        assert second is not first  # a new transaction, a new repository on it
        assert second.by_code(wallet_account_code(user.id)) is not None


def test_a_failed_transaction_forgets_its_repositories(wallet: Wallet) -> None:
    uow = SqlUnitOfWorkFactory(wallet.engine)()

    def failing() -> None:
        with uow:
            assert uow.users.by_id("no-such-user") is None
            raise LookupError("the block fails")

    with pytest.raises(LookupError):
        failing()
    with pytest.raises(RuntimeError, match="users repository is used outside its unit of work"):
        _ = uow.users
    with uow.read_only():
        assert uow.users.by_id("no-such-user") is None
