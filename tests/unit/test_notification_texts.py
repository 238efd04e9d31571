"""Notifications' pure rules: which people an event concerns (`notices_for`), the texts in English,
Mozambican and Brazilian Portuguese on every channel, money as each locale writes it (babel), the
language names people type, and the retry backoff."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from string import Formatter
from typing import Any

import pytest

from mwallet.core.domain import events
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.money import Money
from mwallet.core.domain.notifications import (
    BASE_BACKOFF,
    LANGUAGES,
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    SECURITY_KINDS,
    TEMPLATES,
    Channel,
    Notice,
    Preferences,
    backoff,
    format_money,
    notices_for,
    parse_language,
    render,
)
from mwallet.core.domain.withdrawals import Channel as CashChannel
from mwallet.core.domain.withdrawals import Withdrawal, WithdrawalState
from mwallet.core.errors import InvalidInput

NBSP = "\u00a0"  # babel (CLDR) writes a no-break space in pt-MZ groups and next to symbols
AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
ANA, BRUNO = "01ANA0000000000000000000AA", "01BRUNO00000000000000000BB"
EVENT = "01EVENT0000000000000000000"
LONGEST_NAME = "Maria da Conceição Nhantumbo Fernandes Machava dos Santos Cossa Mondlane Sitoe"
LONGEST_AMOUNT = Money(100_000_000_000, "USD")  # 1,000,000,000.00: the most Money.parse takes
PLACEHOLDER = re.compile(r"\{[^}]*\}")


def withdrawal_event(state: WithdrawalState, *, amount: Money | None = None) -> DomainEvent:
    money = amount or Money(6000, "USD")
    found = Withdrawal(
        id="01W0000000000000000000000W",
        user_id=ANA,
        amount=money,
        channel=CashChannel.ATM,
        state=state,
        created_at=AT,
        expires_at=AT + timedelta(minutes=30),
        pin_attempts=0,
        terminal_id=None,
        updated_at=AT,
        fee=Money(50, money.currency),
    )
    return events.withdrawal_changed(EVENT, withdrawal=found, state=state)


def transfer_event(kind: str = "transfer", minor: int = 4250) -> DomainEvent:
    return events.transfer_completed(
        EVENT,
        transfer_id="01T0000000000000000000000T",
        sender_user_id=ANA,
        recipient_user_id=BRUNO,
        amount_minor=minor,
        currency="USD",
        kind=kind,
    )


# --- notices_for: who is told what -------------------------------------------------------------
def test_a_transfer_tells_the_sender_and_the_recipient_naming_each_other() -> None:
    sent, received = notices_for(transfer_event())
    assert sent == Notice(EVENT, ANA, "transfer_sent", {"amount": Money(4250, "USD")}, BRUNO)
    assert received == Notice(
        EVENT, BRUNO, "transfer_received", {"amount": Money(4250, "USD")}, ANA
    )
    assert not sent.security
    assert not received.security


def test_a_cash_in_tells_the_agent_and_the_customer_in_cash_in_words() -> None:
    given, got = notices_for(transfer_event(kind="cash_in", minor=2500))
    assert (given.user_id, given.kind, given.counterparty_user_id) == (ANA, "cash_in_given", BRUNO)
    assert (got.user_id, got.kind, got.counterparty_user_id) == (BRUNO, "cash_in_received", ANA)
    assert given.params == got.params == {"amount": Money(2500, "USD")}


def test_a_transfer_event_recorded_before_kinds_existed_is_a_plain_transfer() -> None:
    old = transfer_event()
    del old.payload["kind"]
    assert [notice.kind for notice in notices_for(old)] == ["transfer_sent", "transfer_received"]


def test_a_top_up_tells_its_owner_the_amount_and_the_source() -> None:
    event = events.topup_completed(
        EVENT, topup_id="01TOP", user_id=ANA, source="sandbox", amount_minor=15000, currency="USD"
    )
    assert notices_for(event) == [
        Notice(EVENT, ANA, "topup", {"source": "sandbox", "amount": Money(15000, "USD")})
    ]


def test_a_pending_withdrawal_tells_when_its_code_expires() -> None:
    (notice,) = notices_for(withdrawal_event(WithdrawalState.PENDING))
    assert notice == Notice(
        EVENT,
        ANA,
        "withdrawal_pending",
        {"amount": Money(6000, "USD"), "expires_at": "2026-01-15T10:00:00Z"},
    )


@pytest.mark.parametrize(
    "state",
    [
        WithdrawalState.COMPLETED,
        WithdrawalState.CANCELLED,
        WithdrawalState.EXPIRED,
        WithdrawalState.BLOCKED,
        WithdrawalState.REVERSED,
    ],
)
def test_a_withdrawal_reaching_an_end_tells_its_owner(state: WithdrawalState) -> None:
    event = withdrawal_event(state)
    assert event.event_type == f"Withdrawal{state.value.capitalize()}"
    (notice,) = notices_for(event)
    assert notice == Notice(EVENT, ANA, f"withdrawal_{state.value}", {"amount": Money(6000, "USD")})
    assert notice.kind in TEMPLATES["en"]


def test_registration_welcomes_the_new_person() -> None:
    event = events.user_registered(EVENT, user_id=ANA, phone="+258841234567")
    assert notices_for(event) == [Notice(EVENT, ANA, "welcome", {})]


def test_a_password_change_is_a_security_notice() -> None:
    (notice,) = notices_for(events.password_changed(EVENT, user_id=ANA, phone="+258841234567"))
    assert (notice.user_id, notice.kind, notice.params) == (ANA, "password_changed", {})
    assert notice.security


@pytest.mark.parametrize("status", ["frozen", "active", "closed"])
def test_a_wallet_status_change_tells_the_owner_as_a_security_notice(status: str) -> None:
    event = events.wallet_status_changed(EVENT, user_id=ANA, phone="+258841234567", status=status)
    (notice,) = notices_for(event)
    assert (notice.kind, notice.params) == ("wallet_status_changed", {"status": status})
    assert notice.security


@pytest.mark.parametrize("enabled", [True, False])
def test_two_factor_turned_on_or_off_is_a_security_notice(enabled: bool) -> None:
    (notice,) = notices_for(events.two_factor_changed(EVENT, user_id=ANA, enabled=enabled))
    assert (notice.kind, notice.params) == ("two_factor_changed", {"enabled": enabled})
    assert notice.security


def test_a_login_lockout_tells_until_when_as_a_security_notice() -> None:
    event = events.login_locked(EVENT, user_id=ANA, until=AT + timedelta(minutes=30))
    (notice,) = notices_for(event)
    assert (notice.kind, notice.params) == ("login_locked", {"until": "2026-01-15T10:00:00Z"})
    assert notice.security


@pytest.mark.parametrize("event_type", ["SomethingNew", "TransferRequested", ""])
def test_an_event_nobody_is_told_about_gives_no_notice(event_type: str) -> None:
    assert notices_for(DomainEvent(EVENT, event_type, ANA, {"user_id": ANA})) == []


def test_security_kinds_are_the_account_safety_notices_and_no_money_notice() -> None:
    assert {
        "password_changed",
        "two_factor_changed",
        "login_locked",
        "wallet_status_changed",
    } <= SECURITY_KINDS
    assert set(TEMPLATES["en"]) >= SECURITY_KINDS
    assert not SECURITY_KINDS & {
        "transfer_sent",
        "transfer_received",
        "cash_in_given",
        "cash_in_received",
        "topup",
        "welcome",
        *(f"withdrawal_{state.value}" for state in WithdrawalState),
    }


def test_preferences_default_to_english_email_and_sms_and_never_turn_the_inbox_off() -> None:
    default = Preferences(ANA)
    assert (default.language, default.email, default.sms, default.push) == ("en", True, True, False)
    assert [default.wants(channel) for channel in Channel] == [True, True, True, False]
    quiet = Preferences(ANA, email=False, sms=False, push=False)
    assert [quiet.wants(channel) for channel in Channel] == [True, False, False, False]


# --- texts -------------------------------------------------------------------------------------
# The parameters of the kinds known when these tests were written; a kind added later gets its
# parameters from its placeholders (`_guessed`), so it is rendered and measured too.
KNOWN_PARAMS: dict[str, dict[str, Any]] = {
    "transfer_sent": {"amount": LONGEST_AMOUNT},
    "transfer_received": {"amount": LONGEST_AMOUNT},
    "cash_in_given": {"amount": LONGEST_AMOUNT},
    "cash_in_received": {"amount": LONGEST_AMOUNT},
    "topup": {"amount": LONGEST_AMOUNT, "source": "sandbox"},
    "withdrawal_pending": {"amount": Money(100_000, "USD"), "expires_at": "2026-01-15T23:59:00Z"},
    "withdrawal_completed": {"amount": Money(100_000, "USD")},
    "withdrawal_cancelled": {"amount": Money(100_000, "USD")},
    "withdrawal_expired": {"amount": Money(100_000, "USD")},
    "withdrawal_blocked": {"amount": Money(100_000, "USD")},
    "withdrawal_reversed": {"amount": Money(100_000, "USD")},
    "welcome": {},
    "password_changed": {},
    "wallet_status_changed": {"status": "closed"},
    "two_factor_changed": {"enabled": False},
    "login_locked": {"until": "2026-01-15T10:00:00Z"},
}


def _guessed(kind: str) -> dict[str, Any]:
    template = TEMPLATES["en"][kind]
    names = {
        name
        for text in (template.title, template.body, template.sms)
        for _, name, _, _ in Formatter().parse(text)
        if name
    }
    params: dict[str, Any] = {}
    for name in names - {"counterparty"}:
        if name == "amount":
            params[name] = LONGEST_AMOUNT
        elif name == "onoff":
            params["enabled"] = False
        elif name == "status":
            params[name] = "closed"
        else:  # every other parameter so far is a moment
            params[name] = "2026-01-15T23:59:00Z"
    return params


def _every_notice() -> list[Notice]:
    """One notice of every kind with realistic, long parameters (the biggest amount there is)."""
    assert set(KNOWN_PARAMS) <= set(TEMPLATES["en"])
    return [
        Notice(EVENT, ANA, kind, KNOWN_PARAMS.get(kind) or _guessed(kind), BRUNO)
        for kind in TEMPLATES["en"]
    ]


def test_every_language_has_a_template_of_every_kind() -> None:
    assert set(TEMPLATES) == set(LANGUAGES) == {"en", "pt-MZ", "pt-BR"}
    for language in TEMPLATES:
        assert set(TEMPLATES[language]) == set(TEMPLATES["en"]), language


@pytest.mark.parametrize("language", ["en", "pt-MZ", "pt-BR"])
@pytest.mark.parametrize("channel", list(Channel))
def test_every_kind_renders_completely_on_every_channel(language: str, channel: Channel) -> None:
    for notice in _every_notice():
        message = render(notice, channel, language, counterparty=LONGEST_NAME)
        for text in (message.title, message.body):
            assert text.strip(), (notice.kind, text)
            assert not PLACEHOLDER.search(text), (notice.kind, text)
        assert len(message.title) <= 200  # the column's width
        if notice.kind.startswith(("transfer_", "cash_in_")):
            assert LONGEST_NAME in message.body, message.body
        if channel is Channel.SMS:
            assert len(message.body) <= 160, (notice.kind, len(message.body), message.body)
        elif notice.kind in KNOWN_PARAMS:
            assert message.body == TEMPLATES[language][notice.kind].body.format(
                amount=format_money(notice.params.get("amount", LONGEST_AMOUNT), language),
                counterparty=LONGEST_NAME,
                source="sandbox",
                expires_at="23:59 UTC",
                until="10:00 UTC",
                status={"en": "closed"}.get(language, "encerrada"),
                onoff={"en": "off"}.get(language, "desativada"),
            )


def test_a_transfer_reads_naturally_in_each_language() -> None:
    sent, received = notices_for(transfer_event(minor=123450))
    assert render(sent, Channel.INBOX, "en", counterparty="Bruno Sitoe") == (
        render(sent, Channel.EMAIL, "en", counterparty="Bruno Sitoe")
    )
    en = render(sent, Channel.INBOX, "en", counterparty="Bruno Sitoe")
    assert (en.title, en.body) == ("Money sent", "You sent $1,234.50 to Bruno Sitoe.")
    assert render(sent, Channel.SMS, "en", counterparty="Bruno Sitoe").body == (
        "mwallet: you sent $1,234.50 to Bruno Sitoe."
    )
    mz = render(received, Channel.PUSH, "pt-MZ", counterparty="Ana Machava")
    assert (mz.title, mz.body) == (
        "Dinheiro recebido",
        f"Recebeu 1{NBSP}234,50{NBSP}US$ de Ana Machava.",
    )
    br = render(received, Channel.SMS, "pt-BR", counterparty="Ana Machava")
    assert br.body == f"mwallet: recebeu US${NBSP}1.234,50 de Ana Machava."


def test_an_unknown_counterparty_is_a_question_mark_not_a_crash() -> None:
    sent, _ = notices_for(transfer_event())
    assert render(sent, Channel.INBOX, "en").body == "You sent $42.50 to ?."


def test_times_are_shown_as_utc_clock_times() -> None:
    (pending,) = notices_for(withdrawal_event(WithdrawalState.PENDING))
    assert render(pending, Channel.SMS, "en").body == (
        "mwallet: withdrawal of $60.00 ready until 10:00 UTC. Never share its code or PIN."
    )
    locked = notices_for(events.login_locked(EVENT, user_id=ANA, until=AT))[0]
    assert render(locked, Channel.EMAIL, "pt-MZ").body == (
        "Demasiadas tentativas falhadas: o seu número está bloqueado até 09:30 UTC."
    )


@pytest.mark.parametrize(
    ("language", "status", "enabled", "title_status", "title_2fa"),
    [
        ("en", "frozen", True, "Wallet frozen", "Two-factor authentication on"),
        ("pt-MZ", "frozen", False, "Carteira congelada", "Verificação em dois passos desativada"),
        ("pt-BR", "active", True, "Carteira ativa", "Verificação em dois passos ativada"),
    ],
)
def test_status_and_on_off_words_are_translated(
    language: str, status: str, enabled: bool, title_status: str, title_2fa: str
) -> None:
    status_notice = Notice(EVENT, ANA, "wallet_status_changed", {"status": status})
    assert render(status_notice, Channel.INBOX, language).title == title_status
    two_factor = Notice(EVENT, ANA, "two_factor_changed", {"enabled": enabled})
    assert render(two_factor, Channel.INBOX, language).title == title_2fa


# --- money as each locale writes it ------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "language", "shown"),
    [
        (Money(123450, "USD"), "en", "$1,234.50"),
        (Money(123450, "USD"), "pt-MZ", f"1{NBSP}234,50{NBSP}US$"),
        (Money(123450, "USD"), "pt-BR", f"US${NBSP}1.234,50"),
        (Money(6000, "USD"), "en", "$60.00"),
        (Money(5, "USD"), "pt-BR", f"US${NBSP}0,05"),
        (Money(1234, "JPY"), "en", "¥1,234"),
        (Money(1234, "JPY"), "pt-MZ", f"1{NBSP}234{NBSP}JP¥"),
        (Money(1234, "JPY"), "pt-BR", f"JP¥{NBSP}1.234"),
        (Money(123450, "MZN"), "pt-MZ", f"1{NBSP}234,50{NBSP}MTn"),
        (Money(123450, "MZN"), "pt-BR", f"MZN{NBSP}1.234,50"),
        (Money(1234567, "BHD"), "pt-BR", f"BHD{NBSP}1.234,567"),
        (
            LONGEST_AMOUNT,
            "pt-MZ",
            f"1{NBSP}000{NBSP}000{NBSP}000,00{NBSP}US$",
        ),
    ],
)
def test_money_is_written_as_the_locale_writes_it(amount: Money, language: str, shown: str) -> None:
    assert format_money(amount, language) == shown


def test_an_alphabetic_currency_code_is_spaced_from_the_digits_in_english() -> None:
    assert format_money(Money(123450, "MZN"), "en") == f"MZN{NBSP}1,234.50"


# --- languages -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt-MZ", "pt-MZ"),
        ("pt-mz", "pt-MZ"),
        ("pt_MZ", "pt-MZ"),
        (" pt-br ", "pt-BR"),
        ("PT_BR", "pt-BR"),
    ],
)
def test_a_language_is_read_however_it_is_cased_or_separated(typed: str, language: str) -> None:
    assert parse_language(typed) == language


@pytest.mark.parametrize("typed", ["pt", "fr", "en-US", "", "pt-PT", "english"])
def test_a_language_without_templates_is_refused_naming_the_choices(typed: str) -> None:
    with pytest.raises(InvalidInput, match="en, pt-MZ, pt-BR"):
        parse_language(typed)


# --- backoff -------------------------------------------------------------------------------------
def test_backoff_doubles_from_one_second_at_full_jitter() -> None:
    assert timedelta(seconds=1) == BASE_BACKOFF
    assert [backoff(attempts, 1.0) for attempts in range(1, MAX_ATTEMPTS)] == [
        timedelta(seconds=seconds) for seconds in (1, 2, 4, 8, 16)
    ]


def test_backoff_is_capped_at_ten_minutes() -> None:
    assert timedelta(minutes=10) == MAX_BACKOFF
    assert backoff(10, 1.0) == timedelta(seconds=512)
    assert backoff(11, 1.0) == MAX_BACKOFF
    assert backoff(40, 1.0) == MAX_BACKOFF
    assert backoff(10**6, 1.0) == MAX_BACKOFF  # no overflow however many failures
    assert backoff(10**6, 0.0) == MAX_BACKOFF / 2


def test_backoff_treats_zero_attempts_as_the_first() -> None:
    assert backoff(0, 1.0) == backoff(1, 1.0) == timedelta(seconds=1)


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 11, 30])
def test_jitter_spreads_a_delay_between_its_half_and_its_whole(attempts: int) -> None:
    whole = backoff(attempts, 1.0)
    assert backoff(attempts, 0.0) == whole / 2
    assert backoff(attempts, 0.5) == whole * 0.75
    previous = timedelta(0)
    for step in range(101):
        delay = backoff(attempts, step / 100)
        assert whole / 2 <= delay <= whole
        assert delay >= previous  # more jitter never waits less
        previous = delay
