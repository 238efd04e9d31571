"""Domain events: facts the wallet records in its outbox, in the same transaction as the change.

The notifications issue relays them; here they only need a stable type, a unique id and a payload
of plain JSON values (amounts as integer minor units with their currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mwallet.core.domain.payments import Payment
    from mwallet.core.domain.withdrawals import Withdrawal, WithdrawalState


@dataclass(frozen=True, slots=True)
class DomainEvent:
    event_id: str
    event_type: str
    aggregate_id: str
    payload: dict[str, Any] = field(default_factory=dict)


def user_registered(event_id: str, *, user_id: str, phone: str) -> DomainEvent:
    return DomainEvent(event_id, "UserRegistered", user_id, {"user_id": user_id, "phone": phone})


def transfer_completed(
    event_id: str,
    *,
    transfer_id: str,
    sender_user_id: str,
    recipient_user_id: str,
    amount_minor: int,
    currency: str,
    kind: str = "transfer",
) -> DomainEvent:
    """A transfer between two wallets; `kind` "cash_in" when an agent sent it for cash."""
    return DomainEvent(
        event_id,
        "TransferCompleted",
        transfer_id,
        {
            "transfer_id": transfer_id,
            "sender_user_id": sender_user_id,
            "recipient_user_id": recipient_user_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "kind": kind,
        },
    )


def topup_completed(
    event_id: str, *, topup_id: str, user_id: str, source: str, amount_minor: int, currency: str
) -> DomainEvent:
    return DomainEvent(
        event_id,
        "TopUpCompleted",
        topup_id,
        {
            "topup_id": topup_id,
            "user_id": user_id,
            "source": source,
            "amount_minor": amount_minor,
            "currency": currency,
        },
    )


def wallet_status_changed(event_id: str, *, user_id: str, phone: str, status: str) -> DomainEvent:
    return DomainEvent(
        event_id,
        "WalletStatusChanged",
        user_id,
        {"user_id": user_id, "phone": phone, "status": status},
    )


def password_changed(event_id: str, *, user_id: str, phone: str) -> DomainEvent:
    return DomainEvent(event_id, "PasswordChanged", user_id, {"user_id": user_id, "phone": phone})


def two_factor_changed(event_id: str, *, user_id: str, enabled: bool) -> DomainEvent:
    return DomainEvent(
        event_id, "TwoFactorChanged", user_id, {"user_id": user_id, "enabled": enabled}
    )


def login_locked(event_id: str, *, user_id: str, until: datetime) -> DomainEvent:
    """Too many failed logins locked a registered person's number."""
    return DomainEvent(event_id, "LoginLocked", user_id, {"user_id": user_id, "until": _iso(until)})


def login_from_new_device(event_id: str, *, user_id: str, at: datetime) -> DomainEvent:
    """A person logged in from a device not seen before (and they had logged in elsewhere)."""
    return DomainEvent(
        event_id, "LoginFromNewDevice", user_id, {"user_id": user_id, "at": _iso(at)}
    )


def bill_settled(event_id: str, *, payment: Payment) -> DomainEvent:
    """A payment ended: `BillPaid` / `AirtimeBought` (the provider approved), `BillFailed` /
    `AirtimeFailed` (declined)."""
    paid = payment.state.value == "succeeded"
    airtime = payment.product.value == "airtime"
    names = ("AirtimeBought", "AirtimeFailed") if airtime else ("BillPaid", "BillFailed")
    return DomainEvent(
        event_id,
        names[0] if paid else names[1],
        payment.id,
        {
            "payment_id": payment.id,
            "user_id": payment.user_id,
            "biller_id": payment.biller_id,
            "reference": payment.reference,
            "amount_minor": payment.amount.minor,
            "fee_minor": payment.fee.minor,
            "currency": payment.amount.currency,
            "state": payment.state.value,
        },
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def withdrawal_changed(
    event_id: str, *, withdrawal: Withdrawal, state: WithdrawalState
) -> DomainEvent:
    """A withdrawal was requested, or reached an end (completed, cancelled, expired, ...)."""
    return DomainEvent(
        event_id,
        f"Withdrawal{state.value.capitalize()}",
        withdrawal.id,
        {
            "withdrawal_id": withdrawal.id,
            "user_id": withdrawal.user_id,
            "amount_minor": withdrawal.amount.minor,
            "fee_minor": withdrawal.fee.minor,
            "currency": withdrawal.amount.currency,
            "channel": withdrawal.channel.value,
            "state": state.value,
            "expires_at": _iso(withdrawal.expires_at),
        },
    )
