"""`WalletService` end to end on real SQLite and PostgreSQL: every use case, every refusal.

A refusal must leave the books exactly as they were, so each one is checked against a snapshot of
balances, history, ledger counts and the rows of every table a use case writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    AlreadyInitialized,
    AmountTooLarge,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidAmount,
    InvalidCredentials,
    InvalidEmail,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidName,
    InvalidPhoneNumber,
    PhoneAlreadyRegistered,
    SelfTransfer,
    SessionExpired,
    UnknownFundingSource,
    UnknownRecipient,
    UserNotFound,
    WalletClosed,
    WalletError,
    WalletFrozen,
    WalletNotEmpty,
    WeakPassword,
)
from mwallet.core.services.wallet_service import WalletService
from tests.support import PASSWORD, new_phone, register

# Tables a use case may write; a refusal must leave each row count as it was.
WRITTEN_TABLES = (
    "users",
    "accounts",
    "journal_entries",
    "postings",
    "transfers",
    "topups",
    "idempotency_keys",
    "outbox",
    "sessions",
)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def row_counts(wallet: Wallet) -> dict[str, int]:
    with wallet.engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
            for table in WRITTEN_TABLES
        }


@dataclass(frozen=True)
class Books:
    """Everything a refused request must not change."""

    balances: tuple[int, ...]
    histories: tuple[tuple[tuple[str, int, int], ...], ...]
    statuses: tuple[str, ...]
    ledger_counts: tuple[int, int, int]
    rows: dict[str, int]


def books(wallet: Wallet, *people: Principal) -> Books:
    service = wallet.service
    report = service.verify_ledger()
    assert report.ok, report.problems
    with wallet.engine.connect() as conn:
        statuses = tuple(
            str(conn.execute(text(f"SELECT status FROM accounts WHERE code = '{code}'")).scalar())
            for code in (f"wallet:{person.user_id}" for person in people)
        )
    return Books(
        balances=tuple(service.balance(person).balance.minor for person in people),
        histories=tuple(
            tuple(
                (line.entry_id, line.amount.minor, line.balance_after.minor)
                for line in service.history(person, limit=1000)
            )
            for person in people
        ),
        statuses=statuses,
        ledger_counts=(report.accounts, report.entries, report.postings),
        rows=row_counts(wallet),
    )


def assert_refused_without_change(
    wallet: Wallet,
    people: tuple[Principal, ...],
    error: type[WalletError],
    request: Callable[[], object],
) -> WalletError:
    before = books(wallet, *people)
    with pytest.raises(error) as refused:
        request()
    assert books(wallet, *people) == before
    return refused.value


Event = tuple[str, str, dict[str, Any]]


def outbox_events(wallet: Wallet, *, besides: frozenset[str] = frozenset()) -> list[Event]:
    """The outbox's events (type, aggregate, payload) but those in `besides`, in a fixed order.

    Event ids are random within one millisecond, and the test clock stands still: the order of
    the rows says nothing about the order of the changes, so events are sorted for comparison.
    """
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_id, event_type, aggregate_id, payload FROM outbox")
        ).all()
    return sorted(
        (str(kind), str(aggregate), json.loads(payload))
        for event_id, kind, aggregate, payload in rows
        if event_id not in besides
    )


def event_ids(wallet: Wallet) -> frozenset[str]:
    with wallet.engine.connect() as conn:
        return frozenset(conn.execute(text("SELECT event_id FROM outbox")).scalars())


def fund(service: WalletService, person: Principal, minor: int, key: str = "fund") -> None:
    service.topup(person, amount=usd(minor), source="sandbox", idempotency_key=key)


def wallet_code(person: Principal) -> str:
    return f"wallet:{person.user_id}"


# --- init ----------------------------------------------------------------------------------------
def test_init_again_with_the_same_settings_is_a_no_op(wallet: Wallet) -> None:
    service = wallet.service
    before = row_counts(wallet)

    settings, created = service.init(currency="USD")
    again, created_again = service.init()

    assert (created, created_again) == (False, False)
    assert settings.currency == again.currency == "USD"
    assert row_counts(wallet) == before


def test_init_with_another_currency_or_region_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    before = row_counts(wallet)

    with pytest.raises(AlreadyInitialized):
        service.init(currency="EUR")
    with pytest.raises(AlreadyInitialized):
        service.init(region="MZ")

    assert service.settings.currency == "USD"
    assert service.parse_money("1.50") == usd(150)
    assert row_counts(wallet) == before


# --- register ------------------------------------------------------------------------------------
def test_register_opens_a_user_with_an_empty_wallet_and_one_event(wallet: Wallet) -> None:
    service = wallet.service
    phone = new_phone()
    spaced = f"{phone[:4]} {phone[4:6]} {phone[6:9]} {phone[9:]}"

    user = service.register(
        phone=spaced,
        display_name="  Ana   Lima ",
        email="ana@example.org",
        password=PASSWORD,
        idempotency_key="reg-ana",
    )

    assert user.phone == phone
    assert user.display_name == "Ana Lima"
    assert user.email == "ana@example.org"
    principal = service.login(phone=phone, password=PASSWORD).principal
    assert principal.user_id == user.id
    assert service.balance(principal).balance == usd(0)
    assert service.history(principal, limit=10) == []
    assert outbox_events(wallet) == [
        ("UserRegistered", user.id, {"user_id": user.id, "phone": phone})
    ]


def test_register_the_same_phone_twice_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    first = register(service)
    spaced = f"{first.phone[:4]} {first.phone[4:]}"

    for phone in (first.phone, spaced):
        assert_refused_without_change(
            wallet,
            (first,),
            PhoneAlreadyRegistered,
            lambda phone=phone: service.register(  # type: ignore[misc]
                phone=phone,
                display_name="Someone Else",
                email=None,
                password=PASSWORD,
                idempotency_key=f"other-key-{len(phone)}",
            ),
        )


INVALID_REGISTRATIONS: list[tuple[str, dict[str, Any], type[WalletError]]] = [
    ("phone not a number", {"phone": "not-a-phone"}, InvalidPhoneNumber),
    ("phone too short", {"phone": "+25884123"}, InvalidPhoneNumber),
    ("phone without country", {"phone": "841234567"}, InvalidPhoneNumber),
    ("phone empty", {"phone": "   "}, InvalidPhoneNumber),
    ("name empty", {"display_name": "   "}, InvalidName),
    ("name too long", {"display_name": "x" * 81}, InvalidName),
    ("name control chars", {"display_name": "Ana\x00Lima"}, InvalidName),
    ("email malformed", {"email": "ana-at-example.org"}, InvalidEmail),
    ("password too short", {"password": "short"}, WeakPassword),
    ("password too long", {"password": "p" * 129}, WeakPassword),
    ("password is the phone", {"password": "PHONE"}, WeakPassword),
    ("bad idempotency key", {"idempotency_key": "has spaces"}, InvalidIdempotencyKey),
]


@pytest.mark.parametrize(
    ("change", "error"),
    [pytest.param(change, error, id=label) for label, change, error in INVALID_REGISTRATIONS],
)
def test_invalid_registration_is_refused_and_writes_nothing(
    wallet: Wallet, change: dict[str, Any], error: type[WalletError]
) -> None:
    phone = new_phone()
    request: dict[str, Any] = {
        "phone": phone,
        "display_name": "Ana Lima",
        "email": "ana@example.org",
        "password": PASSWORD,
        "idempotency_key": "reg-1",
    }
    request.update(change)
    if request["password"] == "PHONE":
        request["password"] = phone
    before = row_counts(wallet)

    with pytest.raises(error):
        wallet.service.register(**request)

    assert row_counts(wallet) == before
    with pytest.raises(InvalidCredentials):
        wallet.service.login(phone=phone, password=PASSWORD)


def test_register_replayed_with_its_key_returns_the_same_user(wallet: Wallet) -> None:
    service = wallet.service
    phone = new_phone()

    def send(name: str = "Ana Lima", email: str | None = None, number: str = phone) -> str:
        return service.register(
            phone=number,
            display_name=name,
            email=email,
            password=PASSWORD,
            idempotency_key="reg-ana",
        ).id

    first = send()
    after_first = row_counts(wallet)

    assert send() == first
    assert send(number=f"{phone[:4]} {phone[4:]}", name=" Ana  Lima ") == first
    assert row_counts(wallet) == after_first
    for different in ({"name": "Ana Maria Lima"}, {"email": "ana@example.org"}):
        with pytest.raises(IdempotencyKeyReused):
            send(**different)  # type: ignore[arg-type]
    assert row_counts(wallet) == after_first
    assert [kind for kind, _, _ in outbox_events(wallet)] == ["UserRegistered"]


# --- login, logout, authenticate -----------------------------------------------------------------
def test_wrong_password_and_unknown_phone_are_the_same_refusal(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    sessions_before = row_counts(wallet)["sessions"]

    with pytest.raises(InvalidCredentials) as wrong_password:
        service.login(phone=ana.phone, password=PASSWORD + "x")
    with pytest.raises(InvalidCredentials) as unknown_phone:
        service.login(phone=new_phone(), password=PASSWORD)

    assert type(wrong_password.value) is type(unknown_phone.value)
    assert wrong_password.value.code == unknown_phone.value.code
    assert wrong_password.value.message == unknown_phone.value.message
    assert str(wrong_password.value) == str(unknown_phone.value)
    assert row_counts(wallet)["sessions"] == sessions_before


def test_a_session_authenticates_its_user_until_it_expires(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    login = service.login(phone=ana.phone, password=PASSWORD)
    assert login.expires_at == clock.now() + timedelta(days=7)

    assert service.authenticate(token=login.token) == ana
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert service.authenticate(token=login.token) == ana
    clock.advance(timedelta(days=1, seconds=1))
    with pytest.raises(SessionExpired):
        service.authenticate(token=login.token)
    # A new login after expiry works again.
    fresh = service.login(phone=ana.phone, password=PASSWORD)
    assert service.authenticate(token=fresh.token) == ana


def test_a_session_is_expired_eight_days_later(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    token = service.login(phone=ana.phone, password=PASSWORD).token

    clock.advance(timedelta(days=8))

    with pytest.raises(SessionExpired):
        service.authenticate(token=token)


def test_an_unknown_token_is_refused(wallet: Wallet) -> None:
    register(wallet.service)
    with pytest.raises(SessionExpired):
        wallet.service.authenticate(token="no-such-token")
    with pytest.raises(SessionExpired):
        wallet.service.authenticate(token="")


def test_logout_ends_only_that_session(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    phone_session = service.login(phone=ana.phone, password=PASSWORD).token
    laptop_session = service.login(phone=ana.phone, password=PASSWORD).token

    service.logout(token=phone_session)

    with pytest.raises(SessionExpired):
        service.authenticate(token=phone_session)
    assert service.authenticate(token=laptop_session) == ana
    service.logout(token=phone_session)  # logging out twice is harmless
    with pytest.raises(SessionExpired):
        service.authenticate(token=phone_session)


# --- top-up --------------------------------------------------------------------------------------
def test_topup_credits_the_wallet_and_records_it(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    seen = event_ids(wallet)

    done = service.topup(ana, amount=usd(1250), source="sandbox", idempotency_key="top-1")

    assert (done.user_id, done.source, done.amount) == (ana.user_id, "sandbox", usd(1250))
    assert service.balance(ana).balance == usd(1250)
    [line] = service.history(ana, limit=10)
    assert (line.entry_id, line.kind, line.amount, line.balance_after, line.counterparty) == (
        done.id,
        "topup",
        usd(1250),
        usd(1250),
        "sandbox",
    )
    events = outbox_events(wallet, besides=seen)
    assert events == [
        (
            "TopUpCompleted",
            done.id,
            {
                "topup_id": done.id,
                "user_id": ana.user_id,
                "source": "sandbox",
                "amount_minor": 1250,
                "currency": "USD",
            },
        )
    ]
    report = service.verify_ledger()
    assert report.ok, report.problems
    assert report.totals_by_currency == {"USD": 0}


def test_topup_from_an_unknown_source_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    assert_refused_without_change(
        wallet,
        (ana,),
        UnknownFundingSource,
        lambda: service.topup(ana, amount=usd(100), source="bank", idempotency_key="t1"),
    )


def test_topup_in_another_currency_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    assert_refused_without_change(
        wallet,
        (ana,),
        CurrencyMismatch,
        lambda: service.topup(
            ana, amount=Money(100, "EUR"), source="sandbox", idempotency_key="t1"
        ),
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [(AccountStatus.FROZEN, WalletFrozen), (AccountStatus.CLOSED, WalletClosed)],
)
def test_topup_into_a_frozen_or_closed_wallet_is_refused(
    wallet: Wallet, status: AccountStatus, error: type[WalletError]
) -> None:
    service = wallet.service
    ana = register(service)
    service.set_wallet_status(phone=ana.phone, status=status)
    assert_refused_without_change(
        wallet,
        (ana,),
        error,
        lambda: service.topup(ana, amount=usd(100), source="sandbox", idempotency_key="t1"),
    )


def test_topup_replayed_with_its_key_credits_once(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    first = service.topup(ana, amount=usd(500), source="sandbox", idempotency_key="t1")
    after_first = books(wallet, ana)

    clock.advance(timedelta(hours=1))
    again = service.topup(ana, amount=usd(500), source="sandbox", idempotency_key="t1")

    assert again == first
    assert books(wallet, ana) == after_first
    assert_refused_without_change(
        wallet,
        (ana,),
        IdempotencyKeyReused,
        lambda: service.topup(ana, amount=usd(501), source="sandbox", idempotency_key="t1"),
    )


@pytest.mark.parametrize("minor", [0, -500])
def test_a_non_positive_amount_is_refused_as_invalid_input(wallet: Wallet, minor: int) -> None:
    """Doors parse amounts strictly, but the service is a door's only guard for a built Money."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    assert_refused_without_change(
        wallet,
        (ana, bruno),
        InvalidAmount,
        lambda: service.topup(ana, amount=usd(minor), source="sandbox", idempotency_key="t"),
    )
    assert_refused_without_change(
        wallet,
        (ana, bruno),
        InvalidAmount,
        lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=usd(minor), note=None, idempotency_key="s"
        ),
    )


def test_an_amount_above_the_movement_maximum_is_refused(wallet: Wallet) -> None:
    """`Money` promises at most 1,000,000,000 major units per movement (money.py)."""
    service = wallet.service
    ana = register(service)
    too_much = usd(1_000_000_000 * 100 + 1)
    assert_refused_without_change(
        wallet,
        (ana,),
        AmountTooLarge,
        lambda: service.topup(ana, amount=too_much, source="sandbox", idempotency_key="t"),
    )


# --- transfer ------------------------------------------------------------------------------------
def test_transfer_moves_money_and_records_it_on_both_sides(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service, name="Ana Lima"), register(service, name="Bruno Sousa")
    fund(service, ana, 1000)
    fund(service, bruno, 300)
    seen = event_ids(wallet)

    done = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(250), note="  lunch   money ", idempotency_key="s1"
    )

    assert (done.sender_user_id, done.sender_phone) == (ana.user_id, ana.phone)
    assert (done.recipient_user_id, done.recipient_phone) == (bruno.user_id, bruno.phone)
    assert (done.amount, done.note) == (usd(250), "lunch money")
    assert service.balance(ana).balance == usd(750)
    assert service.balance(bruno).balance == usd(550)

    sent, ana_topup = service.history(ana, limit=10)
    assert (sent.entry_id, sent.kind, sent.amount, sent.balance_after) == (
        done.id,
        "transfer",
        usd(-250),
        usd(750),
    )
    assert (sent.counterparty, sent.note) == (bruno.phone, "lunch money")
    assert ana_topup.balance_after == usd(1000)
    received, bruno_topup = service.history(bruno, limit=10)
    assert (received.entry_id, received.kind, received.amount, received.balance_after) == (
        done.id,
        "transfer",
        usd(250),
        usd(550),
    )
    assert (received.counterparty, received.note) == (ana.phone, "lunch money")
    assert bruno_topup.balance_after == usd(300)

    assert outbox_events(wallet, besides=seen) == [
        (
            "TransferCompleted",
            done.id,
            {
                "transfer_id": done.id,
                "sender_user_id": ana.user_id,
                "recipient_user_id": bruno.user_id,
                "amount_minor": 250,
                "currency": "USD",
            },
        )
    ]
    report = service.verify_ledger()
    assert report.ok, report.problems
    assert (report.accounts, report.entries, report.postings) == (3, 3, 6)


def test_transfer_of_the_whole_balance_empties_the_wallet(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    service.transfer(ana, to_phone=bruno.phone, amount=usd(1000), note=None, idempotency_key="s")

    assert service.balance(ana).balance == usd(0)
    assert service.balance(bruno).balance == usd(1000)


def test_transfer_finds_the_recipient_by_any_spelling_of_the_number(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    spaced = f"{bruno.phone[:4]} {bruno.phone[4:6]} {bruno.phone[6:9]} {bruno.phone[9:]}"

    done = service.transfer(ana, to_phone=spaced, amount=usd(10), note=None, idempotency_key="s")

    assert done.recipient_user_id == bruno.user_id
    assert service.balance(bruno).balance == usd(10)


def _scenario_self(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    return lambda: service.transfer(
        ana, to_phone=ana.phone, amount=usd(100), note=None, idempotency_key="s"
    )


def _scenario_unknown(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    stranger = new_phone()
    return lambda: service.transfer(
        ana, to_phone=stranger, amount=usd(100), note=None, idempotency_key="s"
    )


def _scenario_too_much(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    return lambda: service.transfer(
        ana, to_phone=bruno.phone, amount=usd(1001), note=None, idempotency_key="s"
    )


def _scenario_other_currency(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    return lambda: service.transfer(
        ana, to_phone=bruno.phone, amount=Money(100, "EUR"), note=None, idempotency_key="s"
    )


def _scenario_long_note(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    return lambda: service.transfer(
        ana, to_phone=bruno.phone, amount=usd(100), note="n" * 141, idempotency_key="s"
    )


def _scenario_bad_phone(
    service: WalletService, ana: Principal, bruno: Principal
) -> Callable[[], object]:
    return lambda: service.transfer(
        ana, to_phone="12", amount=usd(100), note=None, idempotency_key="s"
    )


def _with_status(
    status: AccountStatus, whose: str
) -> Callable[[WalletService, Principal, Principal], Callable[[], object]]:
    def scenario(service: WalletService, ana: Principal, bruno: Principal) -> Callable[[], object]:
        target = ana if whose == "sender" else bruno
        if status is AccountStatus.CLOSED and target is ana:
            # Only an empty wallet can close: send everything to a third person first.
            other = register(service)
            service.transfer(
                ana, to_phone=other.phone, amount=usd(1000), note=None, idempotency_key="empty"
            )
        service.set_wallet_status(phone=target.phone, status=status)
        return lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=usd(1), note=None, idempotency_key="s"
        )

    return scenario


REFUSED_TRANSFERS: list[
    tuple[str, Callable[[WalletService, Principal, Principal], Callable[[], object]], type]
] = [
    ("self-transfer", _scenario_self, SelfTransfer),
    ("unknown recipient", _scenario_unknown, UnknownRecipient),
    ("insufficient funds", _scenario_too_much, InsufficientFunds),
    ("other currency", _scenario_other_currency, CurrencyMismatch),
    ("note too long", _scenario_long_note, InvalidInput),
    ("recipient not a phone", _scenario_bad_phone, InvalidPhoneNumber),
    ("sender frozen", _with_status(AccountStatus.FROZEN, "sender"), WalletFrozen),
    ("recipient frozen", _with_status(AccountStatus.FROZEN, "recipient"), WalletFrozen),
    ("sender closed", _with_status(AccountStatus.CLOSED, "sender"), WalletClosed),
    ("recipient closed", _with_status(AccountStatus.CLOSED, "recipient"), WalletClosed),
]


@pytest.mark.parametrize(
    ("scenario", "error"),
    [pytest.param(scenario, error, id=label) for label, scenario, error in REFUSED_TRANSFERS],
)
def test_a_refused_transfer_changes_nothing(
    wallet: Wallet,
    scenario: Callable[[WalletService, Principal, Principal], Callable[[], object]],
    error: type[WalletError],
) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    request = scenario(service, ana, bruno)

    assert_refused_without_change(wallet, (ana, bruno), error, request)


def test_a_refused_transfer_does_not_use_up_its_key(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    with pytest.raises(InsufficientFunds):
        service.transfer(
            ana, to_phone=bruno.phone, amount=usd(5000), note=None, idempotency_key="s"
        )

    done = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(400), note=None, idempotency_key="s"
    )

    assert done.amount == usd(400)
    assert service.balance(bruno).balance == usd(400)


def test_closing_a_wallet_that_holds_money_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    assert_refused_without_change(
        wallet,
        (ana, bruno),
        WalletNotEmpty,
        lambda: service.set_wallet_status(phone=ana.phone, status=AccountStatus.CLOSED),
    )
    service.transfer(ana, to_phone=bruno.phone, amount=usd(1), note=None, idempotency_key="s")
    assert service.balance(bruno).balance == usd(1)


def test_a_frozen_wallet_can_be_unfrozen_but_a_closed_one_stays_closed(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    service.set_wallet_status(phone=ana.phone, status=AccountStatus.FROZEN)
    service.set_wallet_status(phone=ana.phone, status=AccountStatus.ACTIVE)
    service.transfer(ana, to_phone=bruno.phone, amount=usd(1), note=None, idempotency_key="s")
    assert service.balance(bruno).balance == usd(1)

    service.transfer(bruno, to_phone=ana.phone, amount=usd(1), note=None, idempotency_key="b")
    service.set_wallet_status(phone=bruno.phone, status=AccountStatus.CLOSED)
    for status in (AccountStatus.ACTIVE, AccountStatus.FROZEN):
        assert_refused_without_change(
            wallet,
            (ana, bruno),
            WalletClosed,
            lambda status=status: service.set_wallet_status(  # type: ignore[misc]
                phone=bruno.phone, status=status
            ),
        )


def test_setting_the_status_of_an_unknown_phone_is_refused(wallet: Wallet) -> None:
    before = row_counts(wallet)
    with pytest.raises(UserNotFound):
        wallet.service.set_wallet_status(phone=new_phone(), status=AccountStatus.FROZEN)
    assert row_counts(wallet) == before


def test_transfer_replayed_with_its_key_returns_the_same_transfer(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    first = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(600), note="rent", idempotency_key="s1"
    )
    after_first = books(wallet, ana, bruno)

    clock.advance(timedelta(minutes=5))
    # A replay must answer from the record even though a second send would overdraw now.
    again = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(600), note="rent", idempotency_key="s1"
    )
    spelled_differently = service.transfer(
        ana,
        to_phone=f"{bruno.phone[:4]} {bruno.phone[4:]}",
        amount=usd(600),
        note=" rent ",
        idempotency_key="s1",
    )

    assert again == first
    assert spelled_differently == first
    assert books(wallet, ana, bruno) == after_first


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"amount": usd(601)}, id="amount"),
        pytest.param({"to": "other"}, id="recipient"),
        pytest.param({"note": "not rent"}, id="note"),
        pytest.param({"note": None}, id="note removed"),
    ],
)
def test_transfer_key_reused_for_another_request_is_refused(
    wallet: Wallet, change: dict[str, Any]
) -> None:
    service = wallet.service
    ana, bruno, carla = register(service), register(service), register(service)
    fund(service, ana, 1000)
    service.transfer(ana, to_phone=bruno.phone, amount=usd(600), note="rent", idempotency_key="s1")
    to = carla.phone if change.get("to") == "other" else bruno.phone

    assert_refused_without_change(
        wallet,
        (ana, bruno, carla),
        IdempotencyKeyReused,
        lambda: service.transfer(
            ana,
            to_phone=to,
            amount=change.get("amount", usd(600)),
            note=change.get("note", "rent"),
            idempotency_key="s1",
        ),
    )


def test_a_topup_key_cannot_be_reused_for_a_transfer_or_the_reverse(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=usd(1000), source="sandbox", idempotency_key="k1")
    service.transfer(ana, to_phone=bruno.phone, amount=usd(100), note=None, idempotency_key="k2")

    assert_refused_without_change(
        wallet,
        (ana, bruno),
        IdempotencyKeyReused,
        lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=usd(1000), note=None, idempotency_key="k1"
        ),
    )
    assert_refused_without_change(
        wallet,
        (ana, bruno),
        IdempotencyKeyReused,
        lambda: service.topup(ana, amount=usd(100), source="sandbox", idempotency_key="k2"),
    )


def test_idempotency_keys_belong_to_their_user(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000, key="same")
    fund(service, bruno, 700, key="same")

    assert service.balance(ana).balance == usd(1000)
    assert service.balance(bruno).balance == usd(700)


def test_each_successful_change_writes_exactly_one_event(wallet: Wallet) -> None:
    service = wallet.service
    seen = event_ids(wallet)

    def new_event_types() -> list[str]:
        nonlocal seen
        types = [kind for kind, _, _ in outbox_events(wallet, besides=seen)]
        seen = event_ids(wallet)
        return types

    ana, bruno = register(service), register(service)
    assert new_event_types() == ["UserRegistered"] * 2
    top = service.topup(ana, amount=usd(1000), source="sandbox", idempotency_key="t")
    assert new_event_types() == ["TopUpCompleted"]
    sent = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(5), note=None, idempotency_key="s"
    )
    assert new_event_types() == ["TransferCompleted"]

    # Replays, refusals, logins, logouts and status changes publish nothing.
    service.topup(ana, amount=usd(1000), source="sandbox", idempotency_key="t")
    service.transfer(ana, to_phone=bruno.phone, amount=usd(5), note=None, idempotency_key="s")
    with pytest.raises(InsufficientFunds):
        service.transfer(bruno, to_phone=ana.phone, amount=usd(6), note=None, idempotency_key="x")
    with pytest.raises(IdempotencyKeyReused):
        service.topup(ana, amount=usd(1), source="sandbox", idempotency_key="t")
    with pytest.raises(PhoneAlreadyRegistered):
        register(service, phone=ana.phone)
    service.logout(token=service.login(phone=ana.phone, password=PASSWORD).token)
    service.set_wallet_status(phone=bruno.phone, status=AccountStatus.FROZEN)
    service.set_wallet_status(phone=bruno.phone, status=AccountStatus.ACTIVE)
    assert new_event_types() == []

    assert outbox_events(wallet) == sorted(
        [
            ("UserRegistered", ana.user_id, {"user_id": ana.user_id, "phone": ana.phone}),
            ("UserRegistered", bruno.user_id, {"user_id": bruno.user_id, "phone": bruno.phone}),
            (
                "TopUpCompleted",
                top.id,
                {
                    "topup_id": top.id,
                    "user_id": ana.user_id,
                    "source": "sandbox",
                    "amount_minor": 1000,
                    "currency": "USD",
                },
            ),
            (
                "TransferCompleted",
                sent.id,
                {
                    "transfer_id": sent.id,
                    "sender_user_id": ana.user_id,
                    "recipient_user_id": bruno.user_id,
                    "amount_minor": 5,
                    "currency": "USD",
                },
            ),
        ]
    )
    with wallet.engine.connect() as conn:
        unpublished = conn.execute(
            text("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        ).scalar_one()
    assert unpublished == 4


# --- history -------------------------------------------------------------------------------------
def test_history_is_newest_first_with_running_balances(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, bruno, 5000)
    ids = [service.topup(ana, amount=usd(1000), source="sandbox", idempotency_key="t1").id]
    for number, (sender, recipient, minor) in enumerate(
        [(ana, bruno, 300), (bruno, ana, 2000), (ana, bruno, 1), (ana, bruno, 699)]
    ):
        clock.advance(timedelta(seconds=1))
        ids.append(
            service.transfer(
                sender,
                to_phone=recipient.phone,
                amount=usd(minor),
                note=None,
                idempotency_key=f"s{number}",
            ).id
        )

    lines = service.history(ana, limit=1000)

    assert [line.entry_id for line in lines] == ids[::-1]
    assert [line.amount.minor for line in lines] == [-699, -1, 2000, -300, 1000]
    assert [line.balance_after.minor for line in lines] == [2000, 2699, 2700, 700, 1000]
    for newer, older in zip(lines, lines[1:], strict=False):
        assert newer.balance_after - newer.amount == older.balance_after
        assert newer.created_at >= older.created_at
    assert lines[0].balance_after == service.balance(ana).balance


def test_history_limit_bounds(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    newest = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(1), note=None, idempotency_key="s"
    )

    [only] = service.history(ana, limit=1)
    assert only.entry_id == newest.id
    assert len(service.history(ana, limit=1000)) == 2
    for limit in (0, -1, 1001):
        with pytest.raises(InvalidInput):
            service.history(ana, limit=limit)


# --- verify_ledger finds tampering ---------------------------------------------------------------
@dataclass(frozen=True)
class Scene:
    ana: Principal
    bruno: Principal
    topup_id: str
    transfer_id: str


def _scene(wallet: Wallet) -> Scene:
    service = wallet.service
    ana, bruno = register(service), register(service)
    topup_id = service.topup(ana, amount=usd(1000), source="sandbox", idempotency_key="t").id
    transfer_id = service.transfer(
        ana, to_phone=bruno.phone, amount=usd(400), note=None, idempotency_key="s"
    ).id
    report = service.verify_ledger()
    assert report.ok, report.problems
    assert (report.accounts, report.entries, report.postings) == (3, 2, 4)
    return Scene(ana, bruno, topup_id, transfer_id)


def _tamper(wallet: Wallet, statement: str, **params: object) -> None:
    with wallet.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        assert result.rowcount == 1


def _posting_id(conn: Connection, entry_id: str, account_code: str) -> int:
    return int(
        conn.execute(
            text(
                "SELECT p.id FROM postings p JOIN accounts a ON a.id = p.account_id "
                "WHERE p.entry_id = :e AND a.code = :c"
            ),
            {"e": entry_id, "c": account_code},
        ).scalar_one()
    )


def _problems(wallet: Wallet) -> tuple[str, ...]:
    report = wallet.service.verify_ledger()
    assert report.ok is False
    assert report.problems
    return report.problems


def test_verify_finds_a_changed_account_balance(wallet: Wallet) -> None:
    scene = _scene(wallet)
    _tamper(
        wallet,
        "UPDATE accounts SET balance = balance + 1 WHERE code = :c",
        c=wallet_code(scene.bruno),
    )

    problems = _problems(wallet)

    assert (
        f"account {wallet_code(scene.bruno)}: stored balance 401 but its postings sum to 400"
        in (problems)
    )
    assert "USD: all balances sum to 1, not zero" in problems


def test_verify_finds_a_deleted_posting(wallet: Wallet) -> None:
    scene = _scene(wallet)
    with wallet.engine.connect() as conn:
        posting = _posting_id(conn, scene.transfer_id, wallet_code(scene.bruno))
    _tamper(wallet, "DELETE FROM postings WHERE id = :p", p=posting)

    problems = _problems(wallet)

    assert f"entry {scene.transfer_id}: only 1 posting(s)" in problems
    assert f"entry {scene.transfer_id}: USD postings sum to -400, not zero" in problems
    assert any(
        problem.startswith(f"account {wallet_code(scene.bruno)}: stored balance 400")
        for problem in problems
    )


def test_verify_finds_an_entry_that_no_longer_balances(wallet: Wallet) -> None:
    scene = _scene(wallet)
    with wallet.engine.connect() as conn:
        posting = _posting_id(conn, scene.transfer_id, wallet_code(scene.bruno))
    # The amount and the running balance change together, so only the entry's sum is wrong
    # at the posting itself (the account's stored balance then disagrees too).
    _tamper(
        wallet,
        "UPDATE postings SET amount = amount + 50, balance_after = balance_after + 50 "
        "WHERE id = :p",
        p=posting,
    )

    problems = _problems(wallet)

    assert f"entry {scene.transfer_id}: USD postings sum to 50, not zero" in problems
    assert f"posting {posting}: running balance does not follow" not in problems


def test_verify_finds_a_broken_running_balance(wallet: Wallet) -> None:
    scene = _scene(wallet)
    with wallet.engine.connect() as conn:
        posting = _posting_id(conn, scene.topup_id, wallet_code(scene.ana))
    _tamper(wallet, "UPDATE postings SET balance_after = 999 WHERE id = :p", p=posting)

    problems = _problems(wallet)

    assert f"posting {posting}: running balance does not follow" in problems


def test_verify_finds_a_posting_in_a_foreign_currency(wallet: Wallet) -> None:
    scene = _scene(wallet)
    with wallet.engine.connect() as conn:
        posting = _posting_id(conn, scene.transfer_id, wallet_code(scene.bruno))
    _tamper(wallet, "UPDATE postings SET currency = 'EUR' WHERE id = :p", p=posting)

    problems = _problems(wallet)

    assert f"posting {posting} is not in the currency of {wallet_code(scene.bruno)}" in problems
    assert f"entry {scene.transfer_id}: USD postings sum to -400, not zero" in problems


def test_the_database_refuses_a_negative_wallet(wallet: Wallet) -> None:
    scene = _scene(wallet)
    with wallet.engine.connect() as conn:
        posting = _posting_id(conn, scene.topup_id, wallet_code(scene.ana))

    with pytest.raises(IntegrityError), wallet.engine.begin() as conn:
        conn.execute(
            text("UPDATE postings SET amount = -1000, balance_after = -1000 WHERE id = :p"),
            {"p": posting},
        )
        conn.execute(
            text("UPDATE accounts SET balance = -1400 WHERE code = :c"),
            {"c": wallet_code(scene.ana)},
        )

    report = wallet.service.verify_ledger()
    assert report.ok, report.problems
    assert wallet.service.balance(scene.ana).balance == usd(600)


def test_verify_finds_a_negative_wallet_behind_the_databases_back(
    wallet: Wallet, backend: str
) -> None:
    """With the CHECK constraint out of the way, `verify` is the line of defence left."""
    scene = _scene(wallet)
    code = wallet_code(scene.ana)
    with wallet.engine.begin() as conn:
        posting = _posting_id(conn, scene.topup_id, code)
        if backend == "sqlite":
            conn.execute(text("PRAGMA ignore_check_constraints = ON"))
        else:
            conn.execute(
                text("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_wallet_not_negative")
            )
        # The top-up becomes a withdrawal of 1000, and the stored balance follows the postings,
        # so the only thing wrong with the wallet is that it is negative.
        conn.execute(
            text("UPDATE postings SET amount = -1000, balance_after = -1000 WHERE id = :p"),
            {"p": posting},
        )
        transfer_posting = _posting_id(conn, scene.transfer_id, code)
        conn.execute(
            text("UPDATE postings SET balance_after = -1400 WHERE id = :p"),
            {"p": transfer_posting},
        )
        conn.execute(text("UPDATE accounts SET balance = -1400 WHERE code = :c"), {"c": code})
        if backend == "sqlite":
            conn.execute(text("PRAGMA ignore_check_constraints = OFF"))

    problems = _problems(wallet)

    assert f"wallet {code} is negative: -1400" in problems
    assert not any(problem.startswith(f"account {code}:") for problem in problems)
    assert not any("running balance" in problem for problem in problems)
