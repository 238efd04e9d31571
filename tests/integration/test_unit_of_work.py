"""`SqlUnitOfWork`'s repositories on both databases: one per transaction, never used after it."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from mwallet.bootstrap import Wallet
from mwallet.core.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from mwallet.core.domain.ledger import wallet_account_code
from tests.support import PASSWORD, new_phone, register


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
    units = SqlUnitOfWorkFactory(wallet.engine)
    uow = units()

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
    units.close()


def test_units_of_work_take_the_connection_the_last_one_gave_back(wallet: Wallet) -> None:
    """Not a trip through the pool each time: the factory keeps it, checked out, until closed."""
    pool = _pool(wallet)
    units = SqlUnitOfWorkFactory(wallet.engine)
    before = pool.checkedout()
    with units().read_only() as first:
        used = first._pooled
    assert pool.checkedout() == before + 1  # kept by the factory
    with units() as second:
        assert second._pooled is used
        assert second.users.by_id("no-such-user") is None
    units.close()
    assert pool.checkedout() == before


def test_a_connection_goes_back_to_the_pool_while_it_is_in_overflow(wallet: Wallet) -> None:
    """Beyond the pool's size a thread may be waiting for a connection: it is not kept then."""
    pool = _pool(wallet)
    units = SqlUnitOfWorkFactory(wallet.engine)
    before = pool.checkedout()
    held = [wallet.engine.raw_connection() for _ in range(pool.size() - before)]
    try:
        with units().read_only():
            assert pool.checkedout() == pool.size() + 1
        assert pool.checkedout() == pool.size()  # given back, not kept
    finally:
        for pooled in held:
            pooled.close()
        units.close()
    with units().read_only():  # a closed factory still works, keeping nothing
        pass
    assert pool.checkedout() == before


def test_a_connection_that_failed_to_roll_back_is_not_kept(wallet: Wallet) -> None:
    pool = _pool(wallet)
    units = SqlUnitOfWorkFactory(wallet.engine)
    uow = units()
    before = pool.checkedout()

    def losing_the_connection() -> None:
        with uow.read_only():
            assert uow._pooled is not None
            driver = uow._pooled.driver_connection
            assert driver is not None
            driver.close()  # the connection is lost mid-transaction
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError, match="the block fails"):
        losing_the_connection()
    assert pool.checkedout() == before  # invalidated and handed to the pool, not kept
    with uow.read_only():
        assert uow.users.by_id("no-such-user") is None  # a new connection
    units.close()


def test_closing_a_wallet_gives_its_kept_connection_back_first(wallet: Wallet) -> None:
    checked_in = []
    event.listen(wallet.engine, "checkin", lambda *_: checked_in.append(True))
    register(wallet.service, new_phone())
    assert _pool(wallet).checkedout() == 1  # kept between units of work
    assert not checked_in
    wallet.close()
    assert checked_in


def _pool(wallet: Wallet) -> QueuePool:
    pool = wallet.engine.pool
    assert isinstance(pool, QueuePool)
    return pool


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_connection_goes_back_to_the_pool_out_of_autocommit_mode(wallet: Wallet) -> None:
    """Units of work keep psycopg's autocommit mode on while they hand a connection to each
    other; whichever way it goes back to the pool, it goes back as the pool's users expect."""
    modes: list[bool] = []
    event.listen(wallet.engine, "checkin", lambda driver, _record: modes.append(driver.autocommit))
    pool = _pool(wallet)
    units = SqlUnitOfWorkFactory(wallet.engine)
    with units() as uow:  # kept by the factory between units of work
        assert uow.users.by_id("no-such-user") is None
        assert uow._pooled is not None
        driver = uow._pooled.driver_connection
        assert driver is not None
        assert driver.autocommit
    assert driver.autocommit  # still kept, still on
    assert not modes
    units.close()  # the kept connection goes back
    with SqlUnitOfWork(wallet.engine) as uow:  # no factory: back at once
        assert uow.users.by_id("no-such-user") is None
    held = [wallet.engine.raw_connection() for _ in range(pool.size() - pool.checkedout())]
    try:
        overflowing = SqlUnitOfWorkFactory(wallet.engine)
        with overflowing():  # in overflow: given back, not kept
            pass
    finally:
        for pooled in held:
            pooled.close()
    assert modes[:3] == [False, False, False]
    assert not any(modes)
    with wallet.engine.connect() as connection:  # SQLAlchemy's own use gets a plain connection
        driver = connection.connection.driver_connection
        assert driver is not None
        assert not driver.autocommit


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_factory_dropped_unclosed_gives_its_connection_back_out_of_autocommit_mode(
    wallet: Wallet,
) -> None:
    """Not closed, a factory's kept connection still goes back as the pool's users expect it:
    in autocommit mode, SQLAlchemy's transactions would commit each statement on its own."""
    modes: list[bool] = []
    event.listen(wallet.engine, "checkin", lambda driver, _record: modes.append(driver.autocommit))
    units = SqlUnitOfWorkFactory(wallet.engine)
    with units() as uow:
        assert uow.users.by_id("no-such-user") is None
    del units, uow
    gc.collect()
    assert modes == [False]
    with wallet.engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        assert not driver.autocommit
