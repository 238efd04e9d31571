"""PostgreSQL sessions have limits: a writer does not wait forever for an account another
session holds, and a session left idle inside its transaction does not hold its locks forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mwallet.core.clock import FixedClock
from mwallet.core.db.engine import make_engine
from mwallet.core.db.errors import translate
from mwallet.core.db.migrate import _PG_MIGRATION_LOCK, upgrade
from mwallet.core.domain.ledger import wallet_account_code
from mwallet.core.domain.money import Money
from mwallet.core.errors import DatabaseBusy, StorageUnavailable
from tests.support import OPERATOR, open_wallet, register

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def with_options(url: str, options: str) -> str:
    return make_url(url).update_query_dict({"options": options}).render_as_string(False)


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def holding_the_wallet_of(engine: Engine, user_id: str) -> Iterator[Any]:
    """A transaction of another session that holds the row of `user_id`'s wallet locked."""
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(
            text("SELECT id FROM accounts WHERE code = :c FOR UPDATE"),
            {"c": wallet_account_code(user_id)},
        )
        try:
            yield conn
        finally:
            if transaction.is_active:
                transaction.rollback()


def test_every_session_gets_the_wallets_limits_and_a_url_can_change_them(db_url: str) -> None:
    with engine_on(db_url) as engine, engine.connect() as conn:
        shown = [
            conn.execute(text(f"SHOW {name}")).scalar_one()
            for name in ("lock_timeout", "idle_in_transaction_session_timeout")
        ]
    assert shown == ["30s", "5min"]
    with engine_on(with_options(db_url, "-c lock_timeout=250")) as engine, engine.connect() as c:
        assert c.execute(text("SHOW lock_timeout")).scalar_one() == "250ms"
        assert c.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one() == "5min"


def test_repeated_url_options_and_pgoptions_are_kept_in_order(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq reads PGOPTIONS only when given no `options`: the wallet's would drop it. It comes
    after the wallet's, the URL's (repeated: a tuple) after it; the last of each setting wins."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=111 -c statement_timeout=2222")
    url = make_url(db_url).update_query_pairs(
        [("options", "-c lock_timeout=333"), ("options", "-c application_name=mw-test")]
    )
    with engine_on(url.render_as_string(False)) as engine, engine.connect() as conn:
        shown = [
            conn.execute(text(f"SHOW {name}")).scalar_one()
            for name in ("lock_timeout", "statement_timeout", "application_name")
        ]
        dsn = conn.connection.driver_connection.info.dsn  # type: ignore[union-attr]
    assert shown == ["333ms", "2222ms", "mw-test"]
    assert "connect_timeout=10" in dsn
    with engine_on(f"{db_url}?connect_timeout=3") as engine, engine.connect() as conn:
        assert "connect_timeout=3" in conn.connection.driver_connection.info.dsn  # type: ignore[union-attr]


def test_an_upgrade_waits_for_another_ones_lock_past_the_lock_timeout(db_url: str) -> None:
    """Concurrent upgrades queue on an advisory lock for as long as the first one migrates:
    the session's `lock_timeout` must not make the others fail."""
    with engine_on(db_url) as holder, holder.connect() as conn:
        conn.begin()
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        release = threading.Timer(1.0, conn.rollback)
        release.start()
        try:
            with engine_on(with_options(db_url, "-c lock_timeout=200")) as engine:
                started = time.monotonic()
                upgrade(engine)
                assert time.monotonic() - started >= 0.5  # it did wait, past its 200 ms
        finally:
            release.cancel()
            release.join()


def test_a_transfer_gives_up_on_a_wallet_locked_too_long_and_moves_nothing(
    db_url: str, clock: FixedClock
) -> None:
    """Past its lock wait a transfer is refused as busy (not retried: it has waited already),
    and nothing of it stays; once the wallet is free it goes through."""
    wallet = open_wallet(with_options(db_url, "-c lock_timeout=300"), clock)
    try:
        service = wallet.service
        ana, bruno = register(service), register(service)
        service.topup(ana, amount=Money(1000, "USD"), source="sandbox", idempotency_key="t")

        def send() -> Any:
            return service.transfer(
                ana, to_phone=bruno.phone, amount=Money(400, "USD"), note=None,
                idempotency_key="held",
            )  # fmt: skip

        with engine_on(db_url) as other, holding_the_wallet_of(other, ana.user_id):
            started = time.monotonic()
            with pytest.raises(DatabaseBusy):
                send()
            assert time.monotonic() - started < 10
        assert service.balance(ana).balance == Money(1000, "USD")
        done = send()  # the same key: the refusal was not kept, the wallet is free now
        assert service.balance(bruno).balance == Money(400, "USD")
        assert service.movements(ana, limit=5).movements[0].entry_id == done.id
        assert service.verify_ledger(actor=OPERATOR).ok
    finally:
        wallet.close()


def test_a_session_idle_in_its_transaction_is_ended_and_its_locks_released(
    db_url: str, clock: FixedClock
) -> None:
    """A client that stopped while holding a wallet's lock: the server ends its session, the
    wallet's next transfer goes through, and the stopped client's next statement fails as an
    outage."""
    wallet = open_wallet(db_url, clock)
    try:
        service = wallet.service
        ana, bruno = register(service), register(service)
        service.topup(ana, amount=Money(1000, "USD"), source="sandbox", idempotency_key="t")
        idle = with_options(db_url, "-c idle_in_transaction_session_timeout=300")
        with engine_on(idle) as stopped, holding_the_wallet_of(stopped, ana.user_id) as conn:
            time.sleep(1.0)  # the client stops; the server ends its session after 300 ms
            service.transfer(
                ana, to_phone=bruno.phone, amount=Money(400, "USD"), note=None,
                idempotency_key="after",
            )  # fmt: skip
            with pytest.raises(DBAPIError) as raised:
                conn.execute(text("SELECT 1"))
            assert isinstance(translate(raised.value), StorageUnavailable)
        assert service.balance(bruno).balance == Money(400, "USD")
        assert service.verify_ledger(actor=OPERATOR).ok
    finally:
        wallet.close()
