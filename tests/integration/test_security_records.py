"""Login lockout and the audit log through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.lockout import LOCK_DURATION, MAX_FAILURES
from mwallet.core.errors import AccountLocked, InvalidCredentials, SessionExpired, WeakPassword
from tests.support import OPERATOR, PASSWORD, TEST_KEYRING, new_phone, open_wallet, register


def actions(wallet: Wallet) -> list[str]:
    return [
        record.action for record in reversed(wallet.service.audit_log(actor=OPERATOR, limit=1000))
    ]


def test_five_failures_lock_the_number_even_for_the_right_password(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidCredentials):
            service.login(phone=ana.phone, password="not-the-password")
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password="not-the-password")
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD)

    clock.advance(LOCK_DURATION - timedelta(seconds=1))
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD)
    clock.advance(timedelta(seconds=1))
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana

    # Refusals while locked are on record once per lock, so they cannot flood the log.
    assert actions(wallet)[-9:] == [
        "login.succeeded",  # register() in tests logs in
        *["login.failed"] * MAX_FAILURES,
        "login.locked",
        "login.refused_locked",
        "login.succeeded",
    ]


def test_a_success_resets_the_count(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidCredentials):
            service.login(phone=ana.phone, password="wrong-password")
    service.login(phone=ana.phone, password=PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidCredentials):
            service.login(phone=ana.phone, password="wrong-password")
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana


def test_an_unknown_number_locks_the_same_way_revealing_nothing(wallet: Wallet) -> None:
    service = wallet.service
    stranger = new_phone()
    errors = []
    for _ in range(MAX_FAILURES + 1):
        with pytest.raises((InvalidCredentials, AccountLocked)) as caught:
            service.login(phone=stranger, password="whatever-it-is")
        errors.append(type(caught.value))
    assert errors == [InvalidCredentials] * (MAX_FAILURES - 1) + [AccountLocked] * 2


def test_every_security_change_is_on_record_and_the_chain_verifies(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    session = service.login(phone=ana.phone, password=PASSWORD)
    assert session.tokens.refresh_token is not None
    service.logout(refresh_token=session.tokens.refresh_token)
    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.FROZEN)

    assert actions(wallet) == [
        "user.registered",
        "signing_key.created",  # the first login makes the first token signing key
        "login.succeeded",
        "login.succeeded",
        "logout",
        "wallet.status_changed",
    ]
    report = service.verify_audit_log(actor=OPERATOR, anchor=None)
    assert report.ok
    assert report.records == 6


def test_an_edited_record_is_found_and_named(wallet: Wallet) -> None:
    service = wallet.service
    register(service)
    register(service)
    with wallet.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"))
    report = service.verify_audit_log(actor=OPERATOR, anchor=None)
    assert report.problem == "record 3 was altered"


def test_a_deleted_record_is_found_and_removing_the_newest_is_caught_by_the_anchor(
    wallet: Wallet,
) -> None:
    service = wallet.service
    for _ in range(3):
        register(service)
    anchor = service.verify_audit_log(actor=OPERATOR, anchor=None).head
    assert anchor is not None
    assert anchor.seq == 7  # 3 x (registered, logged in) and the first signing key

    with wallet.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 6"))
    # The database's own head row still names record 6.
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).problem == (
        "the log's head names record 7; the log ends at 5"
    )
    with wallet.engine.begin() as conn:  # a careful forger moves the head back too
        conn.execute(
            text("UPDATE audit_head SET seq = 5, hash = (SELECT hash FROM audit_log WHERE seq = 5)")
        )
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).ok  # shorter but whole...
    assert service.verify_audit_log(
        actor=OPERATOR, anchor=anchor
    ).problem == (  # ...unless anchored
        "records up to 7 were seen before; the log ends at 5"
    )
    with wallet.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert (
        service.verify_audit_log(actor=OPERATOR, anchor=None).problem
        == "record 2 is missing (found 3)"
    )


def test_concurrent_appenders_never_fork_the_chain(db_url: str) -> None:
    # Four wallets (four engines, like four processes) fail logins at once on one database.
    wallets = [open_wallet(db_url) for _ in range(4)]
    try:
        phones = [new_phone() for _ in range(4)]

        def fail_logins(index: int) -> None:
            for _ in range(MAX_FAILURES + 2):
                with contextlib.suppress(InvalidCredentials, AccountLocked):
                    wallets[index].service.login(phone=phones[index], password="wrong-password")

        threads = [threading.Thread(target=fail_logins, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        report = wallets[0].service.verify_audit_log(actor=OPERATOR, anchor=None)
        assert report.ok, report.problem
        # Per phone: five failures, one lock, one refusal on record (of two).
        assert report.records == 4 * (MAX_FAILURES + 1 + 1)
    finally:
        for built in wallets:
            built.close()


# --- changing a password -------------------------------------------------------------------------
def test_changing_the_password_ends_every_session_and_is_on_record(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    phone_session = service.login(phone=ana.phone, password=PASSWORD)

    service.change_password(ana, current=PASSWORD, new="a brand new passphrase")

    with pytest.raises(SessionExpired):
        service.authenticate(access_token=phone_session.tokens.access_token)
    with pytest.raises(InvalidCredentials):
        service.login(phone=ana.phone, password=PASSWORD)
    assert service.login(phone=ana.phone, password="a brand new passphrase").principal == ana
    assert "password.changed" in actions(wallet)
    with wallet.engine.connect() as conn:
        changed = conn.execute(
            text("SELECT COUNT(*) FROM outbox WHERE event_type = 'PasswordChanged'")
        ).scalar_one()
    assert changed == 1


def test_guessing_the_current_password_counts_towards_the_lock(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidCredentials, match="current password is wrong"):
            service.change_password(ana, current="a-guess-at-it", new="a brand new passphrase")
    with pytest.raises(AccountLocked):
        service.change_password(ana, current="a-guess-at-it", new="a brand new passphrase")
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD)


@pytest.mark.parametrize(
    ("new", "error"),
    [("short", WeakPassword), ("password123", WeakPassword), (PASSWORD, WeakPassword)],
)
def test_a_weak_or_unchanged_new_password_changes_nothing(
    wallet: Wallet, new: str, error: type[Exception]
) -> None:
    service = wallet.service
    ana = register(service)
    with pytest.raises(error):
        service.change_password(ana, current=PASSWORD, new=new)
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana


def test_guesses_arriving_together_get_at_most_five_checks(db_url: str) -> None:
    from mwallet.bootstrap import build_wallet
    from tests.support import FAST_HASHER

    checked: list[str] = []

    class CountingHasher:
        def hash(self, password: str) -> str:
            checked.append(password)
            return FAST_HASHER.hash(password)

        def verify(self, password_hash: str, password: str) -> bool:
            checked.append(password)
            return FAST_HASHER.verify(password_hash, password)

        def needs_rehash(self, password_hash: str) -> bool:
            return False

    wallets = [
        build_wallet(db_url, hasher=CountingHasher(), secrets=TEST_KEYRING) for _ in range(4)
    ]
    try:
        phone = new_phone()
        wallets[0].service.register(
            phone=phone, display_name="Ana", email=None, password=PASSWORD, idempotency_key="r"
        )
        checked.clear()
        start = threading.Barrier(4)

        def guess(index: int) -> None:
            start.wait(30)
            for attempt in range(5):
                with contextlib.suppress(InvalidCredentials, AccountLocked):
                    wallets[index].service.login(phone=phone, password=f"guess-{index}-{attempt}")

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(checked) <= MAX_FAILURES  # twenty guesses, at most five password checks
        with pytest.raises(AccountLocked):
            wallets[0].service.login(phone=phone, password=PASSWORD)
    finally:
        for built in wallets:
            built.close()


def test_a_right_password_checked_while_others_lock_the_number_gets_no_session(
    wallet: Wallet,
) -> None:
    from mwallet.core.services import accounts
    from tests.support import FAST_HASHER

    service = wallet.service
    ana = register(service)
    for _ in range(MAX_FAILURES - 2):
        with pytest.raises(InvalidCredentials):
            service.login(phone=ana.phone, password="wrong-password")

    class SlowHasher:
        """Checks the right password (the fourth attempt) slowly: a fifth, wrong guess is
        checked meanwhile and locks the number."""

        def hash(self, password: str) -> str:
            return FAST_HASHER.hash(password)

        def verify(self, password_hash: str, password: str) -> bool:
            with pytest.raises(AccountLocked):
                service.login(phone=ana.phone, password="yet-another-guess")
            return FAST_HASHER.verify(password_hash, password)

        def needs_rehash(self, password_hash: str) -> bool:
            return False

    with pytest.raises(AccountLocked):
        accounts.login(
            service._uow(), service.clock, SlowHasher(), TEST_KEYRING, settings=service.settings,
            phone=ana.phone, password=PASSWORD,
        )  # fmt: skip
    with wallet.engine.connect() as conn:
        row = conn.execute(
            text("SELECT failures, locked_until FROM login_throttle WHERE phone = :p"),
            {"p": ana.phone},
        ).one()
    assert row[0] == MAX_FAILURES
    assert row[1] is not None  # the lock stands: the right password did not wipe it


def test_broken_stored_values_are_named_not_crashed_on(wallet: Wallet) -> None:
    service = wallet.service
    register(service)
    register(service)
    with wallet.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET details = 'not json' WHERE seq = 2"))
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).problem == "record 2 was altered"
    with wallet.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET at = 9000000000000000000 WHERE seq = 1"))
    problem = service.verify_audit_log(actor=OPERATOR, anchor=None).problem
    assert problem is not None
    assert problem.startswith("record 1 is unreadable")


def test_a_password_a_terminal_could_not_decode_is_just_a_wrong_one(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    # `mwallet login --password-stdin` under LC_ALL=C reads bytes like \xff as lone surrogates.
    with pytest.raises(InvalidCredentials):
        service.login(phone=ana.phone, password="x\udcff")
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana


def test_a_check_that_crashed_does_not_lock_the_number_for_good(
    wallet: Wallet, clock: FixedClock
) -> None:
    from mwallet.core.services import accounts

    service = wallet.service
    ana = register(service)

    class CrashingHasher:
        def hash(self, password: str) -> str:
            raise RuntimeError("the machine lost power")

        def verify(self, password_hash: str, password: str) -> bool:
            raise RuntimeError("the machine lost power")

        def needs_rehash(self, password_hash: str) -> bool:
            return False

    for _ in range(MAX_FAILURES):
        with pytest.raises(RuntimeError):
            accounts.login(
                service._uow(), service.clock, CrashingHasher(), TEST_KEYRING,
                settings=service.settings,
                phone=ana.phone, password=PASSWORD,
            )  # fmt: skip
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD)
    clock.advance(LOCK_DURATION)
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana
