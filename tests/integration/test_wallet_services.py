"""`WalletService` end to end on real SQLite and PostgreSQL: every use case, every refusal.

A refusal must leave the books exactly as they were, so each one is checked against a snapshot of
balances, history, wallet statuses, ledger counts and the rows of every table a use case writes;
the one row it may add is its idempotency key, keeping the refusal for a request sent again.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.transfers import TopUp, Transfer
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
    InvalidToken,
    PhoneAlreadyRegistered,
    SelfTransfer,
    SessionExpired,
    TokenExpired,
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
from tests.support import OPERATOR, PASSWORD, START, new_phone, register

# Tables a use case may write; a refusal must leave each row count as it was.
WRITTEN_TABLES = (
    "users",
    "accounts",
    "journal_entries",
    "postings",
    "transfers",
    "topups",
    "outbox",
    "token_families",
    "refresh_tokens",
)

Event = tuple[str, str, dict[str, Any]]


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def fund(service: WalletService, who: Principal, minor: int, key: str = "fund") -> TopUp:
    return service.topup(who, amount=usd(minor), source="sandbox", idempotency_key=key)


def send(
    service: WalletService,
    sender: Principal,
    to: str,
    amount: int | Money,
    *,
    key: str = "s",
    note: str | None = None,
) -> Transfer:
    money = amount if isinstance(amount, Money) else usd(amount)
    return service.transfer(sender, to_phone=to, amount=money, note=note, idempotency_key=key)


def spaced(phone: str) -> str:
    """The same number as a person might type it: +258 84 760 0001."""
    return f"{phone[:4]} {phone[4:6]} {phone[6:9]} {phone[9:]}"


def wallet_code(person: Principal) -> str:
    return f"wallet:{person.user_id}"


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
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    with wallet.engine.connect() as conn:
        statuses = tuple(
            str(
                conn.execute(
                    text("SELECT status FROM accounts WHERE code = :c"), {"c": wallet_code(person)}
                ).scalar_one()
            )
            for person in people
        )
    return Books(
        balances=tuple(service.balance(person).balance.minor for person in people),
        histories=tuple(
            tuple(
                (line.entry_id, line.amount.minor, line.balance_after.minor)
                for line in service.movements(person, limit=1000).movements
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
) -> None:
    """Refused, changing nothing; sent again (the same key), refused the same way. A refusal
    may add one row: its idempotency key, keeping the answer."""
    before, keys_before = books(wallet, *people), key_count(wallet)
    with pytest.raises(error) as first:
        request()
    assert books(wallet, *people) == before
    with pytest.raises(error) as again:
        request()
    assert (type(again.value), str(again.value)) == (type(first.value), str(first.value))
    assert books(wallet, *people) == before
    assert key_count(wallet) - keys_before in (0, 1)


def key_count(wallet: Wallet) -> int:
    with wallet.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM idempotency_keys")).scalar_one())


def outbox_events(wallet: Wallet, *, besides: frozenset[str] = frozenset()) -> list[Event]:
    """The outbox's events (type, aggregate, payload), but those in `besides`, in a fixed order.

    Event ids are random within one millisecond and the test clock stands still, so the order of
    the rows says nothing about the order of the changes: events are sorted for comparison.
    """
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_id, event_type, aggregate_id, payload FROM outbox")
        ).all()
    return sorted(
        [
            (str(kind), str(aggregate), json.loads(payload))
            for event_id, kind, aggregate, payload in rows
            if event_id not in besides
        ],
        key=lambda event: (event[0], event[1], json.dumps(event[2], sort_keys=True)),
    )


def event_ids(wallet: Wallet) -> frozenset[str]:
    with wallet.engine.connect() as conn:
        return frozenset(conn.execute(text("SELECT event_id FROM outbox")).scalars())


def registered(user_id: str, phone: str) -> Event:
    return ("UserRegistered", user_id, {"user_id": user_id, "phone": phone})


def topped_up(done: TopUp) -> Event:
    payload = {
        "topup_id": done.id,
        "user_id": done.user_id,
        "source": done.source,
        "amount_minor": done.amount.minor,
        "currency": done.amount.currency,
    }
    return ("TopUpCompleted", done.id, payload)


def transferred(done: Transfer) -> Event:
    payload = {
        "transfer_id": done.id,
        "sender_user_id": done.sender_user_id,
        "recipient_user_id": done.recipient_user_id,
        "amount_minor": done.amount.minor,
        "currency": done.amount.currency,
        "kind": "transfer",
    }
    return ("TransferCompleted", done.id, payload)


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

    assert service.settings.currency == "USD"
    assert service.parse_money("1.50") == usd(150)
    assert row_counts(wallet) == before


def test_a_region_can_be_added_once_but_not_changed(wallet: Wallet) -> None:
    service = wallet.service
    settings, created = service.init(region="mz")
    assert (settings.region, created) == ("MZ", False)
    assert service.settings.region == "MZ"

    with pytest.raises(AlreadyInitialized):
        service.init(region="PT")
    assert service.settings.region == "MZ"
    # Numbers typed without +258 now read as Mozambican.
    ana = register(service, phone="84 123 4567")
    assert ana.phone == "+258841234567"


# --- register ------------------------------------------------------------------------------------
def test_register_opens_a_user_with_an_empty_wallet_and_one_event(wallet: Wallet) -> None:
    service = wallet.service
    phone = new_phone()

    user = service.register(
        phone=spaced(phone),
        display_name="  Ana   Lima ",
        email="ana@example.org",
        password=PASSWORD,
        idempotency_key="reg-ana",
    )

    assert (user.phone, user.display_name, user.email) == (phone, "Ana Lima", "ana@example.org")
    principal = service.login(phone=phone, password=PASSWORD).principal
    assert principal.user_id == user.id
    assert service.balance(principal).balance == usd(0)
    assert service.movements(principal, limit=10).movements == []
    assert outbox_events(wallet) == [registered(user.id, phone)]


@pytest.mark.parametrize("spelling", [str, spaced], ids=["e164", "spaced"])
def test_register_the_same_phone_twice_is_refused(
    wallet: Wallet, spelling: Callable[[str], str]
) -> None:
    service = wallet.service
    first = register(service)
    assert_refused_without_change(
        wallet,
        (first,),
        PhoneAlreadyRegistered,
        lambda: service.register(
            phone=spelling(first.phone),
            display_name="Someone Else",
            email=None,
            password=PASSWORD,
            idempotency_key="another-key",
        ),
    )


INVALID_REGISTRATIONS: list[tuple[str, dict[str, Any], type[WalletError]]] = [
    ("phone not a number", {"phone": "not-a-phone"}, InvalidPhoneNumber),
    ("phone too short", {"phone": "+25884123"}, InvalidPhoneNumber),
    ("phone without country", {"phone": "841234567"}, InvalidPhoneNumber),
    ("phone blank", {"phone": "   "}, InvalidPhoneNumber),
    ("name blank", {"display_name": "   "}, InvalidName),
    ("name too long", {"display_name": "x" * 81}, InvalidName),
    ("name control chars", {"display_name": "Ana\x00Lima"}, InvalidName),
    ("email malformed", {"email": "ana-at-example.org"}, InvalidEmail),
    ("password too short", {"password": "short"}, WeakPassword),
    ("password too long", {"password": "p" * 129}, WeakPassword),
    ("password is the phone", {"password": "<phone>"}, WeakPassword),
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
    if request["password"] == "<phone>":
        request["password"] = phone
    before = row_counts(wallet)

    with pytest.raises(error):
        wallet.service.register(**request)

    assert row_counts(wallet) == before
    with pytest.raises(InvalidCredentials):
        wallet.service.login(phone=phone, password=request["password"])


def test_register_replayed_with_its_key_returns_the_same_user(wallet: Wallet) -> None:
    service = wallet.service
    phone = new_phone()

    def again(name: str = "Ana Lima", email: str | None = None, number: str = phone) -> str:
        return service.register(
            phone=number, display_name=name, email=email, password=PASSWORD, idempotency_key="r"
        ).id

    first = again()
    after_first = row_counts(wallet)

    assert again() == first
    assert again(number=spaced(phone), name=" Ana  Lima ") == first
    assert row_counts(wallet) == after_first
    with pytest.raises(IdempotencyKeyReused):
        again(name="Ana Maria Lima")
    with pytest.raises(IdempotencyKeyReused):
        again(email="ana@example.org")
    assert row_counts(wallet) == after_first
    assert outbox_events(wallet) == [registered(first, phone)]


# --- login, logout, authenticate -----------------------------------------------------------------
def test_wrong_password_and_unknown_phone_are_the_same_refusal(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    before = row_counts(wallet)

    with pytest.raises(InvalidCredentials) as wrong_password:
        service.login(phone=ana.phone, password=PASSWORD + "x")
    with pytest.raises(InvalidCredentials) as unknown_phone:
        service.login(phone=new_phone(), password=PASSWORD)

    assert type(wrong_password.value) is type(unknown_phone.value)
    assert wrong_password.value.code == unknown_phone.value.code
    assert wrong_password.value.message == unknown_phone.value.message
    assert str(wrong_password.value) == str(unknown_phone.value)
    assert row_counts(wallet) == before


def test_an_access_token_lasts_15_minutes_and_refreshing_gives_a_new_one(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    login = service.login(phone=ana.phone, password=PASSWORD)
    assert login.tokens.access_expires_at == clock.now() + timedelta(minutes=15)
    assert login.tokens.refresh_expires_at == clock.now() + timedelta(days=7)

    assert service.authenticate(access_token=login.tokens.access_token) == ana
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert service.authenticate(access_token=login.tokens.access_token) == ana
    clock.advance(timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        service.authenticate(access_token=login.tokens.access_token)
    assert login.tokens.refresh_token is not None
    fresh = service.refresh(refresh_token=login.tokens.refresh_token)
    assert fresh.refresh_token != login.tokens.refresh_token
    assert fresh.family_id == login.tokens.family_id
    assert service.authenticate(access_token=fresh.access_token) == ana


def test_a_session_unused_for_eight_days_cannot_be_refreshed(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    refresh_token = service.login(phone=ana.phone, password=PASSWORD).tokens.refresh_token
    assert refresh_token is not None

    clock.advance(timedelta(days=8))

    with pytest.raises(SessionExpired):
        service.refresh(refresh_token=refresh_token)


def test_an_unknown_token_is_refused(wallet: Wallet) -> None:
    register(wallet.service)
    for token in ("no-such-token", "", "a.b.c"):
        with pytest.raises(InvalidToken):
            wallet.service.authenticate(access_token=token)
        with pytest.raises(InvalidToken):
            wallet.service.refresh(refresh_token=token)


def test_logout_ends_only_that_session(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    phone_session = service.login(phone=ana.phone, password=PASSWORD).tokens
    laptop_session = service.login(phone=ana.phone, password=PASSWORD).tokens
    assert phone_session.refresh_token is not None

    assert service.logout(refresh_token=phone_session.refresh_token) is True

    with pytest.raises(SessionExpired):
        service.authenticate(access_token=phone_session.access_token)
    with pytest.raises(SessionExpired):
        service.refresh(refresh_token=phone_session.refresh_token)
    assert service.authenticate(access_token=laptop_session.access_token) == ana
    # logging out twice is harmless
    assert service.logout(refresh_token=phone_session.refresh_token) is False
    with pytest.raises(SessionExpired):
        service.authenticate(access_token=phone_session.access_token)


# --- top-up --------------------------------------------------------------------------------------
def test_topup_credits_the_wallet_and_records_it(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    seen = event_ids(wallet)

    done = fund(service, ana, 1250, key="top-1")

    assert (done.user_id, done.source, done.amount) == (ana.user_id, "sandbox", usd(1250))
    assert service.balance(ana).balance == usd(1250)
    [line] = service.movements(ana, limit=10).movements
    assert (line.entry_id, line.type, line.counterparty) == (done.id, "topup", "sandbox")
    assert (line.amount, line.balance_after) == (usd(1250), usd(1250))
    assert outbox_events(wallet, besides=seen) == [topped_up(done)]
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert report.totals_by_currency == {"USD": 0}


@pytest.mark.parametrize(
    ("source", "amount", "error"),
    [
        pytest.param("bank", usd(100), UnknownFundingSource, id="unknown source"),
        pytest.param("sandbox", Money(100, "EUR"), CurrencyMismatch, id="other currency"),
    ],
)
def test_a_refused_topup_changes_nothing(
    wallet: Wallet, source: str, amount: Money, error: type[WalletError]
) -> None:
    service = wallet.service
    ana = register(service)
    fund(service, ana, 100)
    assert_refused_without_change(
        wallet,
        (ana,),
        error,
        lambda: service.topup(ana, amount=amount, source=source, idempotency_key="t1"),
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
    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=status)
    assert_refused_without_change(wallet, (ana,), error, lambda: fund(service, ana, 100, "t1"))


def test_topup_replayed_with_its_key_credits_once(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    first = fund(service, ana, 500, key="t1")
    after_first = books(wallet, ana)

    clock.advance(timedelta(hours=1))

    assert fund(service, ana, 500, key="t1") == first
    assert books(wallet, ana) == after_first
    assert_refused_without_change(
        wallet, (ana,), IdempotencyKeyReused, lambda: fund(service, ana, 501, key="t1")
    )


@pytest.mark.parametrize("minor", [0, -500])
def test_a_non_positive_amount_is_refused_as_invalid_input(wallet: Wallet, minor: int) -> None:
    """Doors parse amounts strictly, but the service is the last guard for a `Money` built in code.

    A non-positive amount is a caller's mistake, not an integrity failure of the books.
    """
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    assert_refused_without_change(
        wallet, (ana, bruno), InvalidAmount, lambda: fund(service, ana, minor, key="t")
    )
    assert_refused_without_change(
        wallet, (ana, bruno), InvalidAmount, lambda: send(service, ana, bruno.phone, minor)
    )


def test_an_amount_above_the_movement_maximum_is_refused(wallet: Wallet) -> None:
    """money.py promises that no movement carries more than 1,000,000,000 major units."""
    service = wallet.service
    ana = register(service)
    assert_refused_without_change(
        wallet, (ana,), AmountTooLarge, lambda: fund(service, ana, 1_000_000_000 * 100 + 1)
    )


# --- transfer ------------------------------------------------------------------------------------
def test_transfer_moves_money_and_records_it_on_both_sides(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service, name="Ana Lima"), register(service, name="Bruno Sousa")
    fund(service, ana, 1000)
    fund(service, bruno, 300)
    seen = event_ids(wallet)

    done = send(service, ana, bruno.phone, 250, key="s1", note="  lunch   money ")

    assert (done.sender_user_id, done.sender_phone) == (ana.user_id, ana.phone)
    assert (done.recipient_user_id, done.recipient_phone) == (bruno.user_id, bruno.phone)
    assert (done.amount, done.note) == (usd(250), "lunch money")
    assert service.balance(ana).balance == usd(750)
    assert service.balance(bruno).balance == usd(550)
    sent, ana_topup = service.movements(ana, limit=10).movements
    assert (sent.entry_id, sent.type, sent.counterparty, sent.note) == (
        done.id,
        "transfer_out",
        bruno.phone,
        "lunch money",
    )
    assert (sent.amount, sent.balance_after, ana_topup.balance_after) == (
        usd(-250),
        usd(750),
        usd(1000),
    )
    received, bruno_topup = service.movements(bruno, limit=10).movements
    assert (received.entry_id, received.type, received.counterparty, received.note) == (
        done.id,
        "transfer_in",
        ana.phone,
        "lunch money",
    )
    assert (received.amount, received.balance_after, bruno_topup.balance_after) == (
        usd(250),
        usd(550),
        usd(300),
    )
    assert outbox_events(wallet, besides=seen) == [transferred(done)]
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert (report.accounts, report.entries, report.postings) == (
        13,
        3,
        6,
    )  # two wallets, two funding sources, the holds, the fees, 7 sandbox billers' payables


def test_transfer_of_the_whole_balance_empties_the_wallet(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    send(service, ana, bruno.phone, 1000)

    assert service.balance(ana).balance == usd(0)
    assert service.balance(bruno).balance == usd(1000)


def test_transfer_finds_the_recipient_by_any_spelling_of_the_number(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    done = send(service, ana, spaced(bruno.phone), 10)

    assert done.recipient_user_id == bruno.user_id
    assert service.balance(bruno).balance == usd(10)


# A refused transfer: prepare the scene (ana holds 1000, bruno 0), then return the request.
Scenario = Callable[[WalletService, Principal, Principal], Callable[[], object]]


def _status_scenario(status: AccountStatus, whose: str) -> Scenario:
    def prepare(service: WalletService, ana: Principal, bruno: Principal) -> Callable[[], object]:
        target = ana if whose == "sender" else bruno
        if status is AccountStatus.CLOSED and target is ana:
            # Only an empty wallet can close: ana gives everything to a third person first.
            send(service, ana, register(service).phone, 1000, key="empty")
        service.set_wallet_status(actor=OPERATOR, phone=target.phone, status=status)
        return lambda: send(service, ana, bruno.phone, 1)

    return prepare


REFUSED_TRANSFERS: list[tuple[str, Scenario, type[WalletError]]] = [
    ("self-transfer", lambda s, a, b: lambda: send(s, a, a.phone, 100), SelfTransfer),
    (
        "self-transfer spelled differently",
        lambda s, a, b: lambda: send(s, a, spaced(a.phone), 100),
        SelfTransfer,
    ),
    ("unknown recipient", lambda s, a, b: partial(send, s, a, new_phone(), 100), UnknownRecipient),
    ("recipient not a phone", lambda s, a, b: lambda: send(s, a, "12", 100), InvalidPhoneNumber),
    ("insufficient funds", lambda s, a, b: lambda: send(s, a, b.phone, 1001), InsufficientFunds),
    (
        "other currency",
        lambda s, a, b: lambda: send(s, a, b.phone, Money(100, "EUR")),
        CurrencyMismatch,
    ),
    (
        "note too long",
        lambda s, a, b: lambda: send(s, a, b.phone, 100, note="n" * 141),
        InvalidInput,
    ),
    ("bad idempotency key", lambda s, a, b: lambda: send(s, a, b.phone, 1, key=""), InvalidInput),
    ("sender frozen", _status_scenario(AccountStatus.FROZEN, "sender"), WalletFrozen),
    ("recipient frozen", _status_scenario(AccountStatus.FROZEN, "recipient"), WalletFrozen),
    ("sender closed", _status_scenario(AccountStatus.CLOSED, "sender"), WalletClosed),
    ("recipient closed", _status_scenario(AccountStatus.CLOSED, "recipient"), WalletClosed),
]


@pytest.mark.parametrize(
    ("scenario", "error"),
    [pytest.param(scenario, error, id=label) for label, scenario, error in REFUSED_TRANSFERS],
)
def test_a_refused_transfer_changes_nothing(
    wallet: Wallet, scenario: Scenario, error: type[WalletError]
) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    request = scenario(service, ana, bruno)

    assert_refused_without_change(wallet, (ana, bruno), error, request)


def test_a_refused_transfer_keeps_its_answer_under_its_key(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    with pytest.raises(InsufficientFunds) as first:
        send(service, ana, bruno.phone, 5000, key="s")
    fund(service, ana, 9000, key="more")

    # The same request again gets the first answer, although it would go through now.
    with pytest.raises(InsufficientFunds) as again:
        send(service, ana, bruno.phone, 5000, key="s")
    assert str(again.value) == str(first.value)
    assert service.balance(bruno).balance == usd(0)
    with pytest.raises(IdempotencyKeyReused):
        send(service, ana, bruno.phone, 400, key="s")
    # A new key is a new request.
    assert send(service, ana, bruno.phone, 5000, key="s2").amount == usd(5000)
    assert service.balance(ana).balance == usd(5000)


def test_a_refusal_for_an_unknown_recipient_is_kept_after_they_register(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    fund(service, ana, 1000)
    phone = new_phone()
    with pytest.raises(UnknownRecipient):
        send(service, ana, phone, 100, key="later")
    bruno = register(service, phone=phone)

    with pytest.raises(UnknownRecipient):
        send(service, ana, phone, 100, key="later")
    assert service.balance(bruno).balance == usd(0)
    assert send(service, ana, phone, 100, key="now").amount == usd(100)


def test_bad_input_leaves_the_key_free(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    keys = key_count(wallet)
    with pytest.raises(InvalidAmount):
        send(service, ana, bruno.phone, 0, key="k")
    assert key_count(wallet) == keys
    assert send(service, ana, bruno.phone, 100, key="k").amount == usd(100)


def test_closing_a_wallet_that_holds_money_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    assert_refused_without_change(
        wallet,
        (ana, bruno),
        WalletNotEmpty,
        lambda: service.set_wallet_status(
            actor=OPERATOR, phone=ana.phone, status=AccountStatus.CLOSED
        ),
    )
    send(service, ana, bruno.phone, 1)
    assert service.balance(bruno).balance == usd(1)


def test_a_frozen_wallet_can_be_unfrozen_but_a_closed_one_stays_closed(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)

    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.FROZEN)
    service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.ACTIVE)
    send(service, ana, bruno.phone, 1)
    assert service.balance(bruno).balance == usd(1)

    send(service, bruno, ana.phone, 1, key="back")
    service.set_wallet_status(actor=OPERATOR, phone=bruno.phone, status=AccountStatus.CLOSED)
    for status in (AccountStatus.ACTIVE, AccountStatus.FROZEN):
        assert_refused_without_change(
            wallet,
            (ana, bruno),
            WalletClosed,
            lambda status=status: service.set_wallet_status(
                actor=OPERATOR,  # type: ignore[misc]
                phone=bruno.phone,
                status=status,
            ),
        )


def test_setting_the_status_of_an_unknown_phone_is_refused(wallet: Wallet) -> None:
    before = row_counts(wallet)
    with pytest.raises(UserNotFound):
        wallet.service.set_wallet_status(
            actor=OPERATOR, phone=new_phone(), status=AccountStatus.FROZEN
        )
    assert row_counts(wallet) == before


def test_transfer_replayed_with_its_key_returns_the_same_transfer(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    first = send(service, ana, bruno.phone, 600, key="s1", note="rent")
    after_first = books(wallet, ana, bruno)

    clock.advance(timedelta(minutes=5))

    # A replay answers from the record, though sending 600 again would now overdraw.
    assert send(service, ana, bruno.phone, 600, key="s1", note="rent") == first
    assert send(service, ana, spaced(bruno.phone), 600, key="s1", note=" rent ") == first
    assert books(wallet, ana, bruno) == after_first


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"amount": 601}, id="amount"),
        pytest.param({"to": "carla"}, id="recipient"),
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
    send(service, ana, bruno.phone, 600, key="s1", note="rent")
    to = carla.phone if change.get("to") == "carla" else bruno.phone

    assert_refused_without_change(
        wallet,
        (ana, bruno, carla),
        IdempotencyKeyReused,
        lambda: send(
            service, ana, to, change.get("amount", 600), key="s1", note=change.get("note", "rent")
        ),
    )


def test_a_topup_key_cannot_be_reused_for_a_transfer_or_the_reverse(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000, key="k1")
    send(service, ana, bruno.phone, 100, key="k2")

    assert_refused_without_change(
        wallet,
        (ana, bruno),
        IdempotencyKeyReused,
        lambda: send(service, ana, bruno.phone, 1, key="k1"),
    )
    assert_refused_without_change(
        wallet, (ana, bruno), IdempotencyKeyReused, lambda: fund(service, ana, 100, key="k2")
    )


def test_idempotency_keys_belong_to_their_user(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000, key="same")
    fund(service, bruno, 700, key="same")
    send(service, ana, bruno.phone, 10, key="pay")
    send(service, bruno, ana.phone, 20, key="pay")

    assert service.balance(ana).balance == usd(1010)
    assert service.balance(bruno).balance == usd(690)


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
    top = fund(service, ana, 1000, key="t")
    assert new_event_types() == ["TopUpCompleted"]
    sent = send(service, ana, bruno.phone, 5, key="s")
    assert new_event_types() == ["TransferCompleted"]

    # Replays, refusals, logins and logouts publish nothing.
    fund(service, ana, 1000, key="t")
    send(service, ana, bruno.phone, 5, key="s")
    with pytest.raises(InsufficientFunds):
        send(service, bruno, ana.phone, 6, key="x")
    with pytest.raises(IdempotencyKeyReused):
        fund(service, ana, 1, key="t")
    with pytest.raises(PhoneAlreadyRegistered):
        register(service, phone=ana.phone)
    refresh_token = service.login(phone=ana.phone, password=PASSWORD).tokens.refresh_token
    assert refresh_token is not None
    service.logout(refresh_token=refresh_token)
    assert new_event_types() == []

    assert outbox_events(wallet) == sorted(
        [
            registered(ana.user_id, ana.phone),
            registered(bruno.user_id, bruno.phone),
            topped_up(top),
            transferred(sent),
        ]
    )  # all still in the outbox: nothing relayed them yet

    # A wallet's status changes are published, once each; a refused one is not.
    service.set_wallet_status(actor=OPERATOR, phone=bruno.phone, status=AccountStatus.FROZEN)
    service.set_wallet_status(actor=OPERATOR, phone=bruno.phone, status=AccountStatus.ACTIVE)
    with pytest.raises(WalletNotEmpty):
        service.set_wallet_status(actor=OPERATOR, phone=bruno.phone, status=AccountStatus.CLOSED)
    assert new_event_types() == ["WalletStatusChanged", "WalletStatusChanged"]


# --- history -------------------------------------------------------------------------------------
def test_history_is_newest_first_with_running_balances(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, bruno, 5000)
    ids = [fund(service, ana, 1000).id]
    moves = [(ana, bruno, 300), (bruno, ana, 2000), (ana, bruno, 1), (ana, bruno, 699)]
    for number, (sender, recipient, minor) in enumerate(moves):
        clock.advance(timedelta(seconds=1))
        ids.append(send(service, sender, recipient.phone, minor, key=f"s{number}").id)

    lines = service.movements(ana, limit=1000).movements

    assert [line.entry_id for line in lines] == ids[::-1]
    assert [line.amount.minor for line in lines] == [-699, -1, 2000, -300, 1000]
    assert [line.balance_after.minor for line in lines] == [2000, 2699, 2700, 700, 1000]
    assert [line.counterparty for line in lines] == [bruno.phone] * 4 + ["sandbox"]
    for newer, older in itertools.pairwise(lines):
        assert newer.balance_after - newer.amount == older.balance_after
        assert newer.created_at > older.created_at
    assert lines[0].balance_after == service.balance(ana).balance


def test_history_limit_bounds(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    newest = send(service, ana, bruno.phone, 1)

    [only] = service.movements(ana, limit=1).movements
    assert only.entry_id == newest.id
    assert len(service.movements(ana, limit=1000).movements) == 2
    for limit in (0, -1, 1001):
        with pytest.raises(InvalidInput):
            service.movements(ana, limit=limit)


# --- verify_ledger finds tampering ---------------------------------------------------------------
@dataclass(frozen=True)
class Scene:
    """Ana topped up 1000 and sent 400 to Bruno; the books are sound."""

    ana: Principal
    bruno: Principal
    topup_id: str
    transfer_id: str


@pytest.fixture
def scene(wallet: Wallet) -> Scene:
    service = wallet.service
    ana, bruno = register(service), register(service)
    topup_id = fund(service, ana, 1000).id
    transfer_id = send(service, ana, bruno.phone, 400).id
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert (report.accounts, report.entries, report.postings) == (
        13,
        2,
        4,
    )  # two wallets, two funding sources, the holds, the fees, 7 sandbox billers' payables
    return Scene(ana, bruno, topup_id, transfer_id)


def _tamper(wallet: Wallet, statement: str, **params: object) -> None:
    with wallet.engine.begin() as conn:
        assert conn.execute(text(statement), params).rowcount == 1


# A posting is its entry's `leg`th: `_posting` gives the two as the parameters of this condition.
THE_POSTING = "entry_id = :e AND leg = :l"


def _posting(wallet: Wallet, entry_id: str, person: Principal) -> dict[str, object]:
    """The key of the posting of `entry_id` on `person`'s wallet, as parameters e and l."""
    with wallet.engine.connect() as conn:
        leg = conn.execute(
            text(
                "SELECT p.leg FROM postings p JOIN accounts a ON a.id = p.account_id "
                "WHERE p.entry_id = :e AND a.code = :c"
            ),
            {"e": entry_id, "c": wallet_code(person)},
        ).scalar_one()
    return {"e": entry_id, "l": int(leg)}


def _named(posting: dict[str, object]) -> str:
    """The posting as `verify` names it."""
    return f"entry {posting['e']}, posting {posting['l']}"


def _problems(wallet: Wallet) -> tuple[str, ...]:
    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok is False
    return report.problems


def test_verify_finds_a_changed_account_balance(wallet: Wallet, scene: Scene) -> None:
    code = wallet_code(scene.bruno)
    _tamper(wallet, "UPDATE accounts SET balance = balance + 1 WHERE code = :c", c=code)

    problems = _problems(wallet)

    assert f"account {code}: stored balance 401 but its postings sum to 400" in problems
    assert "USD: all balances sum to 1, not zero" in problems


def test_verify_finds_a_deleted_posting(wallet: Wallet, scene: Scene) -> None:
    posting = _posting(wallet, scene.transfer_id, scene.bruno)
    _tamper(wallet, f"DELETE FROM postings WHERE {THE_POSTING}", **posting)

    problems = _problems(wallet)

    assert f"entry {scene.transfer_id}: only 1 posting(s)" in problems
    assert f"entry {scene.transfer_id}: USD postings sum to -400, not zero" in problems
    code = wallet_code(scene.bruno)
    assert f"account {code}: stored balance 400 but its postings sum to 0" in problems


def test_verify_finds_an_entry_that_no_longer_balances(wallet: Wallet, scene: Scene) -> None:
    posting = _posting(wallet, scene.transfer_id, scene.bruno)
    # The running balance is edited along with the amount: the entry's sum is what breaks.
    _tamper(
        wallet,
        f"UPDATE postings SET amount = 450, balance_after = 450 WHERE {THE_POSTING}",
        **posting,
    )

    problems = _problems(wallet)

    assert f"entry {scene.transfer_id}: USD postings sum to 50, not zero" in problems
    assert f"{_named(posting)}: running balance does not follow" not in problems


def test_verify_finds_a_broken_running_balance(wallet: Wallet, scene: Scene) -> None:
    posting = _posting(wallet, scene.topup_id, scene.ana)
    _tamper(wallet, f"UPDATE postings SET balance_after = 999 WHERE {THE_POSTING}", **posting)

    problems = _problems(wallet)

    assert f"{_named(posting)}: running balance does not follow" in problems


def _posted_at(wallet: Wallet, posting: dict[str, object]) -> int:
    with wallet.engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT created_at FROM postings WHERE {THE_POSTING}"), posting
            ).scalar_one()
        )


def test_verify_finds_a_posting_earlier_than_the_one_before_it(
    wallet: Wallet, scene: Scene
) -> None:
    """History and statements read an account's postings in time order, and `verify` follows
    the running balance in that order: a posting dated before the one it came after breaks it,
    both where it lands and where it left (and here it lands before its own entry, too)."""
    topup = _posting(wallet, scene.topup_id, scene.ana)
    transfer = _posting(wallet, scene.transfer_id, scene.ana)
    earlier = _posted_at(wallet, topup) - 5
    _tamper(
        wallet, f"UPDATE postings SET created_at = :t WHERE {THE_POSTING}", t=earlier, **transfer
    )

    problems = _problems(wallet)

    assert problems == (
        f"{_named(topup)}: running balance does not follow",
        f"{_named(transfer)}: running balance does not follow",
        f"{_named(transfer)}: dated before its entry",
    )


def test_verify_finds_two_postings_whose_times_were_swapped(
    wallet: Wallet, clock: FixedClock
) -> None:
    """Two postings of an account that each took its balance from 0 to 1000 fit each other's
    place in the running balance: swapped, the chain still follows, but the one moved earlier is
    dated before its own entry was made (a posting takes its entry's time, or a later one)."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    first = fund(service, ana, 1000, key="first").id
    clock.advance(timedelta(seconds=1))
    send(service, ana, bruno.phone, 1000, key="s1")
    clock.advance(timedelta(seconds=1))
    second = fund(service, ana, 1000, key="second").id
    clock.advance(timedelta(seconds=1))
    send(service, ana, bruno.phone, 1000, key="s2")
    assert service.verify_ledger(actor=OPERATOR).ok
    early, late = _posting(wallet, first, ana), _posting(wallet, second, ana)
    early_at, late_at = _posted_at(wallet, early), _posted_at(wallet, late)
    moved = f"UPDATE postings SET created_at = :t WHERE {THE_POSTING}"
    _tamper(wallet, moved, t=early_at + 1, **early)  # out of the way of the unique index
    _tamper(wallet, moved, t=early_at, **late)
    _tamper(wallet, moved, t=late_at, **early)

    problems = _problems(wallet)

    assert problems == (f"{_named(late)}: dated before its entry",)


def test_verify_finds_an_account_keeping_a_time_older_than_its_last_posting(
    wallet: Wallet, scene: Scene
) -> None:
    """Its next posting would take a time before its last one."""
    code = wallet_code(scene.ana)
    _tamper(wallet, "UPDATE accounts SET posted_at = 0 WHERE code = :c", c=code)

    problems = _problems(wallet)

    assert problems == (f"account {code}: its last posting is later than the time it keeps for it",)


def test_the_database_refuses_two_postings_of_an_account_at_one_time(
    wallet: Wallet, scene: Scene
) -> None:
    topup = _posting(wallet, scene.topup_id, scene.ana)
    transfer = _posting(wallet, scene.transfer_id, scene.ana)
    taken = _posted_at(wallet, topup)
    with pytest.raises(IntegrityError), wallet.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE postings SET created_at = :t WHERE {THE_POSTING}"),
            {"t": taken, **transfer},
        )
    assert wallet.service.verify_ledger(actor=OPERATOR).ok


def test_an_accounts_postings_take_increasing_times_when_the_clock_stands_or_steps_back(
    wallet: Wallet, clock: FixedClock
) -> None:
    """Movements in the same microsecond, or after the clock stepped back, post a microsecond
    after the account's last posting: history and statements keep the order the balance took."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    topup = fund(service, ana, 1000)  # at the clock's time
    sent = send(service, ana, bruno.phone, 100, key="first")  # the same microsecond
    clock.advance(timedelta(seconds=-30))  # the clock steps back
    last = send(service, ana, bruno.phone, 50, key="second")
    with wallet.engine.connect() as conn:
        times: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT p.entry_id, p.created_at FROM postings p "
                    "JOIN accounts a ON a.id = p.account_id WHERE a.code = :c"
                ),
                {"c": wallet_code(ana)},
            ).all()
        )
        kept = conn.execute(
            text("SELECT posted_at FROM accounts WHERE code = :c"), {"c": wallet_code(ana)}
        ).scalar_one()
    first = utc_micros(START)
    assert times == {topup.id: first, sent.id: first + 1, last.id: first + 2}
    assert kept == first + 2
    lines = service.movements(ana, limit=10).movements
    assert lines[0].entry_id == last.id  # newest first, in the order the balance took
    assert [line.balance_after for line in lines] == [usd(850), usd(900), usd(1000)]
    # A period that starts at the clock's first time holds all three; one starting a
    # microsecond later, the two that came after the top-up.
    with service.statement(ana, start=START) as whole:
        assert [line.balance_after for line in whole.lines] == [usd(1000), usd(900), usd(850)]
    with service.statement(ana, start=START + timedelta(microseconds=1)) as later:
        assert later.opening == usd(1000)
        assert [line.balance_after for line in later.lines] == [usd(900), usd(850)]
    assert service.verify_ledger(actor=OPERATOR).ok


def test_verify_warns_of_accounts_whose_last_posting_is_ahead_of_the_clock(
    wallet: Wallet, clock: FixedClock
) -> None:
    """A clock that ran ahead for one movement dates every later posting of its accounts after
    it: `verify` warns of it until the real time has caught up (beyond a few minutes'
    tolerance); the books themselves are sound."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    fund(service, ana, 1000)
    clock.advance(timedelta(days=1))  # the clock jumps ahead
    send(service, ana, bruno.phone, 100, key="ahead")
    clock.advance(timedelta(days=-1))  # and is put right
    later = send(service, ana, bruno.phone, 50, key="later")
    assert later.created_at == START  # the entry has the clock's time; its postings follow
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok  # the books are sound: a person is to look at the clock
    ahead = sorted(warning.split(": its last")[0] for warning in report.warnings)
    assert ahead == sorted(f"account {wallet_code(who)}" for who in (ana, bruno))
    assert "ahead of the clock" in report.warnings[0]
    clock.advance(timedelta(days=1))  # the real time catches up
    assert service.verify_ledger(actor=OPERATOR).warnings == ()


def test_verify_names_twenty_problems_and_counts_the_rest(wallet: Wallet) -> None:
    service = wallet.service
    for _ in range(22):
        fund(service, register(service), 10)
    with wallet.engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET balance = balance + 1 WHERE kind = 'wallet'"))

    problems = _problems(wallet)

    # 22 wallets off by one, and the currency's sum off by 22: 23 problems.
    assert len(problems) == 21
    assert problems[-1] == "... and 3 more"
    assert all(problem.startswith("account wallet:") for problem in problems[:20])


def test_verify_finds_a_posting_in_a_foreign_currency(wallet: Wallet, scene: Scene) -> None:
    posting = _posting(wallet, scene.transfer_id, scene.bruno)
    _tamper(wallet, f"UPDATE postings SET currency = 'EUR' WHERE {THE_POSTING}", **posting)

    problems = _problems(wallet)

    assert f"{_named(posting)}: not in the currency of {wallet_code(scene.bruno)}" in problems
    assert f"entry {scene.transfer_id}: USD postings sum to -400, not zero" in problems


# Ana's top-up of 1000 turned into a withdrawal, everything after it following suit: each
# posting and the stored balance agree, and the only thing wrong with the wallet is its sign.
_NEGATIVE_WALLET = (
    "UPDATE postings SET amount = -1000, balance_after = -1000 "
    "WHERE entry_id = :topup AND leg = :topup_leg",
    "UPDATE postings SET balance_after = -1400 WHERE entry_id = :transfer AND leg = :transfer_leg",
    "UPDATE accounts SET balance = -1400 WHERE code = :code",
)


def _negative_wallet_params(wallet: Wallet, scene: Scene) -> dict[str, object]:
    return {
        "topup": scene.topup_id,
        "topup_leg": _posting(wallet, scene.topup_id, scene.ana)["l"],
        "transfer": scene.transfer_id,
        "transfer_leg": _posting(wallet, scene.transfer_id, scene.ana)["l"],
        "code": wallet_code(scene.ana),
    }


def test_the_database_refuses_a_negative_wallet(wallet: Wallet, scene: Scene) -> None:
    params = _negative_wallet_params(wallet, scene)

    with wallet.engine.begin() as conn:
        postings_edit, balance_edit = _NEGATIVE_WALLET[:2], _NEGATIVE_WALLET[2]
        for statement in postings_edit:
            conn.execute(text(statement), params)
        with pytest.raises(IntegrityError):
            conn.execute(text(balance_edit), params)
        conn.rollback()

    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert wallet.service.balance(scene.ana).balance == usd(600)


def test_verify_finds_a_negative_wallet_behind_the_databases_back(
    wallet: Wallet, scene: Scene, backend: str
) -> None:
    """With the CHECK constraint out of the way, `verify` is the line of defence left."""
    params = _negative_wallet_params(wallet, scene)
    with wallet.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("PRAGMA ignore_check_constraints = ON"))
        else:
            conn.execute(
                text("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_wallet_not_negative")
            )
        for statement in _NEGATIVE_WALLET:
            assert conn.execute(text(statement), params).rowcount == 1
        if backend == "sqlite":
            conn.execute(text("PRAGMA ignore_check_constraints = OFF"))

    problems = _problems(wallet)

    code = wallet_code(scene.ana)
    assert f"wallet {code} is negative: -1400" in problems
    assert not any(problem.startswith(f"account {code}:") for problem in problems)
    assert not any("running balance" in problem for problem in problems)


# --- balance bounds ------------------------------------------------------------------------------
def test_no_balance_may_pass_the_largest_an_account_holds(wallet: Wallet) -> None:
    from mwallet.core.domain.ledger import MAX_BALANCE_MINOR
    from mwallet.core.errors import BalanceLimitReached

    service = wallet.service
    ana = register(service)
    # The sandbox source has paid in nearly all it may: the next cent would pass the bound.
    with wallet.engine.begin() as conn:
        conn.execute(
            text("UPDATE accounts SET balance = :b WHERE code = 'funding:sandbox:USD'"),
            {"b": -MAX_BALANCE_MINOR + 100},
        )
    service.topup(ana, amount=usd(100), source="sandbox", idempotency_key="fill")

    with pytest.raises(BalanceLimitReached):
        service.topup(ana, amount=usd(1), source="sandbox", idempotency_key="over")

    assert service.balance(ana).balance == usd(100)
    with wallet.engine.connect() as conn:
        funding = conn.execute(
            text("SELECT balance FROM accounts WHERE code = 'funding:sandbox:USD'")
        ).scalar_one()
    assert funding == -MAX_BALANCE_MINOR
