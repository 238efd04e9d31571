"""Notifications: what the wallet tells people about the events it records, on which channels, in
which language.

An event in the outbox (`core.domain.events`) becomes one *notice* per person it concerns (a
transfer: one for the sender, one for the recipient). A notice becomes one *delivery* per channel
the person wants — the in-app inbox always; e-mail, SMS and push by their preferences, except that
security notices go out on every channel the person has an address for. Each delivery is keyed by
(event, person, channel), so an event handed over twice is delivered once.

    queued ──send ok──▶ sent
       └──send failed──▶ retrying ──(backoff: 2^n s, jitter)──▶ … ──Nth failure──▶ dead
    dead ──admin retry──▶ queued                       (an inbox delivery is sent when made)

Texts come from `TEMPLATES` (English, Portuguese), money formatted for the person's locale.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.money import Money, currency_exponent
from mwallet.core.errors import InvalidInput, NotificationNotFound, quoted

MAX_ATTEMPTS = 6  # then dead-lettered: 1 + 2 + 4 + 8 + 16 seconds of backoff between them
BASE_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=10)
LEASE = timedelta(minutes=2)  # a delivery being sent is someone's for this long


class Channel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker, under a lease
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"


LANGUAGES = {"en": "en", "pt-MZ": "pt_MZ", "pt-BR": "pt_BR"}  # ours -> babel's locale


def parse_language(text: str) -> str:
    wanted = text.strip().replace("_", "-")
    for language in LANGUAGES:
        if language.lower() == wanted.lower():
            return language
    raise InvalidInput(f"{quoted(text)}: choose a language among {', '.join(LANGUAGES)}")


@dataclass(frozen=True, slots=True)
class Preferences:
    """A person's channels and language. The inbox is always on."""

    user_id: str
    language: str = "en"
    email: bool = True
    sms: bool = True
    push: bool = False

    def wants(self, channel: Channel) -> bool:
        return {
            Channel.INBOX: True,
            Channel.EMAIL: self.email,
            Channel.SMS: self.sms,
            Channel.PUSH: self.push,
        }[channel]


@dataclass(frozen=True, slots=True)
class Notice:
    """What one person is told about one event: a template `kind` and its parameters."""

    event_id: str
    user_id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    counterparty_user_id: str | None = None

    @property
    def security(self) -> bool:
        return self.kind in SECURITY_KINDS


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    user_id: str
    channel: Channel
    kind: str
    address: str
    title: str
    body: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None = None
    read_at: datetime | None = None
    last_error: str | None = None


SECURITY_KINDS = frozenset(
    {
        "password_changed",
        "two_factor_changed",
        "login_locked",
        "login_new_device",
        "wallet_status_changed",
    }
)


# --- which people an event concerns ------------------------------------------------------------
def notices_for(event: DomainEvent) -> list[Notice]:
    """The notices an event gives rise to (none for events nobody is told about)."""
    if event.event_type.startswith("Withdrawal"):
        return _withdrawal(event)
    found = _NOTICES.get(event.event_type)
    return found(event) if found is not None else []


def _transfer(event: DomainEvent) -> list[Notice]:
    p = event.payload
    amount = {"amount": _money(p)}
    cash_in = p.get("kind") == "cash_in"
    sender, recipient = p["sender_user_id"], p["recipient_user_id"]
    return [
        Notice(event.event_id, sender, "cash_in_given" if cash_in else "transfer_sent", amount,
               recipient),
        Notice(event.event_id, recipient, "cash_in_received" if cash_in else "transfer_received",
               amount, sender),
    ]  # fmt: skip


def _withdrawal(event: DomainEvent) -> list[Notice]:
    p = event.payload
    kind = f"withdrawal_{p['state']}"
    if kind not in _EN:  # a state nobody is told about (authorized: the customer is there)
        return []
    params: dict[str, Any] = {"amount": _money(p)}
    if p["state"] == "pending":
        # Events recorded before expiry times were part of them have none.
        params["expires_at"] = p.get("expires_at")
    return [Notice(event.event_id, p["user_id"], kind, params)]


def _simple(kind: str, *keys: str) -> Callable[[DomainEvent], list[Notice]]:
    def notices(event: DomainEvent) -> list[Notice]:
        p = event.payload
        params: dict[str, Any] = {key: p[key] for key in keys}
        if "amount_minor" in p:
            params["amount"] = _money(p)
        return [Notice(event.event_id, p["user_id"], kind, params)]

    return notices


_NOTICES: dict[str, Callable[[DomainEvent], list[Notice]]] = {
    "TransferCompleted": _transfer,
    "TopUpCompleted": _simple("topup", "source"),
    "UserRegistered": _simple("welcome"),
    "PasswordChanged": _simple("password_changed"),
    "WalletStatusChanged": _simple("wallet_status_changed", "status"),
    "TwoFactorChanged": _simple("two_factor_changed", "enabled"),
    "LoginLocked": _simple("login_locked", "until"),
    "LoginFromNewDevice": _simple("login_new_device", "at"),
    "BillPaid": _simple("bill_paid", "biller_id", "reference"),
    "BillFailed": _simple("bill_failed", "biller_id", "reference"),
    "AirtimeBought": _simple("airtime_bought", "reference"),
    "AirtimeFailed": _simple("airtime_failed", "reference"),
}


def _money(payload: Mapping[str, Any]) -> Money:
    return Money(int(payload["amount_minor"]), str(payload["currency"]))


# --- texts -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Template:
    title: str
    body: str
    sms: str  # one SMS: at most 160 characters once filled in


_EN: dict[str, Template] = {
    "transfer_sent": Template(
        "Money sent", "You sent {amount} to {counterparty}.",
        "mwallet: you sent {amount} to {counterparty}.",
    ),
    "transfer_received": Template(
        "Money received", "You received {amount} from {counterparty}.",
        "mwallet: you received {amount} from {counterparty}.",
    ),
    "cash_in_given": Template(
        "Cash in done", "You sent {amount} to {counterparty} for the cash they handed you.",
        "mwallet: cash in of {amount} to {counterparty} done.",
    ),
    "cash_in_received": Template(
        "Cash in received", "{amount} is in your wallet: the cash you gave {counterparty}.",
        "mwallet: cash in of {amount} at {counterparty} received.",
    ),
    "topup": Template(
        "Top-up received", "{amount} was added to your wallet from {source}.",
        "mwallet: top-up of {amount} received.",
    ),
    "withdrawal_pending": Template(
        "Withdrawal ready", "Your withdrawal of {amount} is ready. Use the code and PIN you were "
        "shown before {expires_at}.",
        "mwallet: withdrawal of {amount} ready until {expires_at}. Never share its code or PIN.",
    ),
    "withdrawal_completed": Template(
        "Cash withdrawn", "Your withdrawal of {amount} was paid out.",
        "mwallet: withdrawal of {amount} paid out.",
    ),
    "withdrawal_cancelled": Template(
        "Withdrawal cancelled", "Your withdrawal of {amount} was cancelled; the money is back.",
        "mwallet: withdrawal of {amount} cancelled, money returned.",
    ),
    "withdrawal_expired": Template(
        "Withdrawal expired", "Your withdrawal of {amount} expired unclaimed; the money is back.",
        "mwallet: withdrawal of {amount} expired, money returned.",
    ),
    "withdrawal_blocked": Template(
        "Withdrawal blocked", "Your withdrawal of {amount} was blocked after 3 wrong PINs; the "
        "money is back. If that was not you, someone has your code.",
        "mwallet: withdrawal of {amount} blocked after wrong PINs, money returned.",
    ),
    "withdrawal_reversed": Template(
        "Withdrawal reversed", "The cash for your withdrawal of {amount} could not be paid out; "
        "the money is back.",
        "mwallet: withdrawal of {amount} not paid out, money returned.",
    ),
    "welcome": Template(
        "Welcome to mwallet", "Your wallet is open. Top up, send money and withdraw cash.",
        "Welcome to mwallet: your wallet is open.",
    ),
    "password_changed": Template(
        "Password changed", "Your password was changed and your other sessions ended. If that "
        "was not you, contact support now.",
        "mwallet: your password was changed. Not you? Contact support now.",
    ),
    "wallet_status_changed": Template(
        "Wallet {status}", "Your wallet is now {status}.",
        "mwallet: your wallet is now {status}.",
    ),
    "two_factor_changed": Template(
        "Two-factor authentication {onoff}", "Two-factor authentication was turned {onoff}. If "
        "that was not you, contact support now.",
        "mwallet: 2FA turned {onoff}. Not you? Contact support now.",
    ),
    "login_locked": Template(
        "Login locked", "Too many failed logins: your number is locked until {until}.",
        "mwallet: too many failed logins, locked until {until}.",
    ),
    "login_new_device": Template(
        "New device", "Your wallet was opened on a new device at {at}. If that was not you, "
        "change your password now.",
        "mwallet: login on a new device at {at}. Not you? Change your password now.",
    ),
    "bill_paid": Template(
        "Bill paid", "Your payment of {amount} to {biller_id} (reference {reference}) was "
        "completed successfully.",
        "mwallet: {amount} paid to {biller_id}, ref {reference}.",
    ),
    "bill_failed": Template(
        "Bill not paid", "Your payment of {amount} to {biller_id} (reference {reference}) was "
        "declined; the money is back.",
        "mwallet: payment of {amount} to {biller_id} declined, money returned.",
    ),
    "airtime_bought": Template(
        "Airtime bought", "{amount} of airtime for {reference}.",
        "mwallet: {amount} of airtime for {reference}.",
    ),
    "airtime_failed": Template(
        "Airtime not bought", "The airtime of {amount} for {reference} was declined; the money "
        "is back.",
        "mwallet: airtime of {amount} for {reference} declined, money returned.",
    ),
}  # fmt: skip

_PT: dict[str, Template] = {
    "transfer_sent": Template(
        "Dinheiro enviado", "Enviou {amount} para {counterparty}.",
        "mwallet: enviou {amount} para {counterparty}.",
    ),
    "transfer_received": Template(
        "Dinheiro recebido", "Recebeu {amount} de {counterparty}.",
        "mwallet: recebeu {amount} de {counterparty}.",
    ),
    "cash_in_given": Template(
        "Depósito feito", "Enviou {amount} para {counterparty} pelo dinheiro que lhe entregou.",
        "mwallet: depósito de {amount} para {counterparty} feito.",
    ),
    "cash_in_received": Template(
        "Depósito recebido", "{amount} está na sua carteira: o dinheiro que entregou a "
        "{counterparty}.",
        "mwallet: depósito de {amount} em {counterparty} recebido.",
    ),
    "topup": Template(
        "Carregamento recebido", "{amount} foi adicionado à sua carteira a partir de {source}.",
        "mwallet: carregamento de {amount} recebido.",
    ),
    "withdrawal_pending": Template(
        "Levantamento pronto", "O seu levantamento de {amount} está pronto. Use o código e o PIN "
        "que recebeu antes de {expires_at}.",
        "mwallet: levantamento de {amount} pronto até {expires_at}. Nunca partilhe o código "
        "nem o PIN.",
    ),
    "withdrawal_completed": Template(
        "Dinheiro levantado", "O seu levantamento de {amount} foi pago.",
        "mwallet: levantamento de {amount} pago.",
    ),
    "withdrawal_cancelled": Template(
        "Levantamento cancelado", "O seu levantamento de {amount} foi cancelado; o dinheiro "
        "voltou.",
        "mwallet: levantamento de {amount} cancelado, dinheiro devolvido.",
    ),
    "withdrawal_expired": Template(
        "Levantamento expirado", "O seu levantamento de {amount} expirou; o dinheiro voltou.",
        "mwallet: levantamento de {amount} expirou, dinheiro devolvido.",
    ),
    "withdrawal_blocked": Template(
        "Levantamento bloqueado", "O seu levantamento de {amount} foi bloqueado após 3 PINs "
        "errados; o dinheiro voltou. Se não foi você, alguém tem o seu código.",
        "mwallet: levantamento de {amount} bloqueado por PIN errado, dinheiro devolvido.",
    ),
    "withdrawal_reversed": Template(
        "Levantamento anulado", "O dinheiro do seu levantamento de {amount} não pôde ser pago; "
        "o dinheiro voltou.",
        "mwallet: levantamento de {amount} não pago, dinheiro devolvido.",
    ),
    "welcome": Template(
        "Bem-vindo à mwallet", "A sua carteira está aberta. Carregue, envie dinheiro e levante.",
        "Bem-vindo à mwallet: a sua carteira está aberta.",
    ),
    "password_changed": Template(
        "Senha alterada", "A sua senha foi alterada e as outras sessões terminaram. Se não foi "
        "você, contacte o apoio já.",
        "mwallet: a sua senha foi alterada. Não foi você? Contacte o apoio já.",
    ),
    "wallet_status_changed": Template(
        "Carteira {status}", "A sua carteira está agora {status}.",
        "mwallet: a sua carteira está agora {status}.",
    ),
    "two_factor_changed": Template(
        "Verificação em dois passos {onoff}", "A verificação em dois passos foi {onoff}. Se não "
        "foi você, contacte o apoio já.",
        "mwallet: verificação em dois passos {onoff}. Não foi você? Contacte o apoio já.",
    ),
    "login_locked": Template(
        "Entrada bloqueada", "Demasiadas tentativas falhadas: o seu número está bloqueado até "
        "{until}.",
        "mwallet: demasiadas tentativas, bloqueado até {until}.",
    ),
    "login_new_device": Template(
        "Novo dispositivo", "A sua carteira foi aberta num novo dispositivo às {at}. Se não foi "
        "você, mude a sua senha já.",
        "mwallet: entrada num novo dispositivo às {at}. Não foi você? Mude a senha já.",
    ),
    "bill_paid": Template(
        "Conta paga", "O seu pagamento de {amount} a {biller_id} (referência {reference}) foi "
        "concluído com sucesso.",
        "mwallet: {amount} pago a {biller_id}, ref {reference}.",
    ),
    "bill_failed": Template(
        "Conta não paga", "O seu pagamento de {amount} a {biller_id} (referência {reference}) "
        "foi recusado; o dinheiro voltou.",
        "mwallet: pagamento de {amount} a {biller_id} recusado, dinheiro devolvido.",
    ),
    "airtime_bought": Template(
        "Recarga feita", "Recarga de {amount} para {reference}.",
        "mwallet: recarga de {amount} para {reference}.",
    ),
    "airtime_failed": Template(
        "Recarga recusada", "A recarga de {amount} para {reference} foi recusada; o dinheiro "
        "voltou.",
        "mwallet: recarga de {amount} para {reference} recusada, dinheiro devolvido.",
    ),
}  # fmt: skip

TEMPLATES: dict[str, dict[str, Template]] = {"en": _EN, "pt-MZ": _PT, "pt-BR": _PT}

_WORDS = {
    "en": {"active": "active", "frozen": "frozen", "closed": "closed", True: "on", False: "off"},
    "pt-MZ": {"active": "ativa", "frozen": "congelada", "closed": "encerrada",
              True: "ativada", False: "desativada"},
    "pt-BR": {"active": "ativa", "frozen": "congelada", "closed": "encerrada",
              True: "ativada", False: "desativada"},
}  # fmt: skip


def render(
    notice: Notice, channel: Channel, language: str, *, counterparty: str | None = None
) -> Message:
    """The notice's text for one channel, in `language`, money formatted for its locale."""
    template = TEMPLATES[language][notice.kind]
    words = _WORDS[language]
    values: dict[str, str] = {"counterparty": counterparty or "?"}
    for key, value in notice.params.items():
        if isinstance(value, Money):
            values[key] = format_money(value, language)
        elif key in ("expires_at", "until", "at"):
            values[key] = _clock_time(str(value)) if value else "?"
        elif key == "enabled":
            values["onoff"] = words[bool(value)]
        elif key == "status":
            values[key] = words.get(str(value), str(value))
        else:
            values[key] = str(value)
    title = template.title.format(**values)
    body = (template.sms if channel is Channel.SMS else template.body).format(**values)
    return Message(title, body)


def format_money(amount: Money, language: str) -> str:
    """`60.00 USD` for people: `$60.00` in English, `60,00 US$` in pt-MZ, `US$ 60,00` in pt-BR."""
    from babel.numbers import format_currency

    exponent = currency_exponent(amount.currency)
    value = Decimal(amount.minor).scaleb(-exponent)
    shown = str(format_currency(value, amount.currency, locale=LANGUAGES[language]))
    # CLDR spaces a letter symbol from the digits ("MZN 1,234.50"); babel does not.
    return re.sub(r"^([^\W\d_]{2,})(?=\d)", "\\1\u00a0", shown)


def _clock_time(iso: str) -> str:
    """`2026-01-15T10:00:00Z` -> `10:00 UTC` (notices speak of today's times)."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.strftime("%H:%M UTC")


def backoff(attempts: int, jitter: float) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling from BASE_BACKOFF, capped, and
    spread by `jitter` (0..1, drawn by the caller) so failed deliveries do not retry in step."""
    delay: timedelta = min(BASE_BACKOFF * (1 << min(max(attempts - 1, 0), 20)), MAX_BACKOFF)
    return delay * (0.5 + jitter / 2)


def no_notification(typed: str) -> NotificationNotFound:
    """The refusal of an id that names nothing in the person's inbox (the service's, and the
    remote client's for a typed id that cannot be one, which it does not put in a URL)."""
    return NotificationNotFound(f"no notification {quoted(typed.strip())} in your inbox")
