"""The unit of work's savepoint, on both databases: what `RefusalsKept` stands on. Undoing to the
mark keeps what came before it, whether what came after had reached the server or (PostgreSQL,
pipelined) was still waiting to go out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.db.unit_of_work import SqlUnitOfWork
from mwallet.core.domain.transfers import IdempotencyRecord, Refusal
from tests.support import register

WHEN = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
RESULT = "01KF0000000000000000000000"


def keys(wallet: Wallet) -> dict[str, str | None]:
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT key, refusal_code FROM idempotency_keys WHERE scope = 'test'")
        ).all()
    return {str(key): code for key, code in rows}


def claim(uow: SqlUnitOfWork, key: str) -> None:
    assert uow.idempotency.claim("test", key, IdempotencyRecord("t", "f", RESULT), WHEN) is None


def test_statements_sent_after_the_mark_are_undone(wallet: Wallet) -> None:
    uow = SqlUnitOfWork(wallet.engine)
    with uow:
        claim(uow, "before")
        uow.savepoint()
        claim(uow, "after")  # read back at once: it has reached the server, the mark with it
        uow.rollback_to_savepoint()
        uow.idempotency.keep_refusal("test", "before", Refusal("insufficient_funds", "short"))
        uow.commit()
    assert keys(wallet) == {"before": "insufficient_funds"}


def test_statements_still_waiting_after_the_mark_are_dropped(wallet: Wallet) -> None:
    uow = SqlUnitOfWork(wallet.engine)
    with uow:
        claim(uow, "before")
        uow.savepoint()
        # A write nobody reads: on PostgreSQL it waits, with the mark, for the next round trip.
        uow.idempotency.keep_refusal("test", "before", Refusal("insufficient_funds", "short"))
        uow.rollback_to_savepoint()
        uow.commit()
    assert keys(wallet) == {"before": None}


def test_a_statement_that_failed_after_the_mark_is_undone_too(wallet: Wallet) -> None:
    """On PostgreSQL a failed statement spoils the whole transaction, but for a savepoint."""
    phone = register(wallet.service).phone
    uow = SqlUnitOfWork(wallet.engine)
    with uow:
        claim(uow, "before")
        existing = uow.users.by_phone(phone)
        assert existing is not None
        uow.savepoint()

        def insert_again() -> None:
            uow.users.add(existing, "hash")  # the same user again: the key is taken
            uow.users.by_phone(phone)  # (PostgreSQL: the insert waits for a read to go out)

        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            insert_again()
        uow.rollback_to_savepoint()
        claim(uow, "after")
        uow.commit()
    assert keys(wallet) == {"before": None, "after": None}
