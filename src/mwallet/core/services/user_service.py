"""What a person's commands need from the wallet, as one typed interface (a `Protocol`).

`WalletService` (the local implementation: use cases on a database) satisfies it as it is; the
remote CLI's `mwallet.remote.HttpWalletService` satisfies it over the HTTP API. The CLI's user
commands call only this interface, so each command is written once and runs either way; so do
the reports of another person (`--user PHONE`, admins and auditors), `admin users show`, an
admin's changes to a person (`admin users set-role|tier|freeze|unfreeze`, `admin wallets …`) and
the operators' reports (`admin report …`). The other operators' commands (admin, agents,
terminals) stay on `WalletService`, local.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from mwallet.core.domain.admin_reports import (
    ActiveUsers,
    FeesReport,
    HoldsReport,
    TerminalCash,
    TrialBalance,
    VolumeReport,
)
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.movements import MovementFilter
from mwallet.core.domain.notifications import Delivery, Preferences
from mwallet.core.domain.payments import Biller, Payment
from mwallet.core.domain.roles import Role
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.domain.statistics import Period, UsageStats
from mwallet.core.domain.tariffs import Allowance, LimitFamily, Movement, Quote, Tariff, Tier
from mwallet.core.domain.transfers import TopUp, Transfer
from mwallet.core.domain.users import Principal, User
from mwallet.core.domain.withdrawals import Channel, Withdrawal
from mwallet.core.services.accounts import LoginResult
from mwallet.core.services.device_grants import DeviceAuthorization
from mwallet.core.services.history import MovementPage, Statement
from mwallet.core.services.two_factor import Enrollment, TwoFactorStatus
from mwallet.core.services.wallets import Balance
from mwallet.core.services.withdrawals import IssuedWithdrawal


class UserService(Protocol):
    """A person's use cases: sign-up and sessions, their wallet, payments, cash, inbox and its
    preferences, fees; and what admins and auditors read: people, reports."""

    @property
    def currency(self) -> str:
        """The instance's currency (ISO 4217)."""
        ...

    def parse_money(self, text: str, *, allow_zero: bool = False) -> Money: ...

    def step_up_amount(self) -> Money: ...

    # --- accounts and sessions
    def register(
        self, *, phone: str, display_name: str, email: str | None, password: str,
        idempotency_key: str,
    ) -> User: ...  # fmt: skip

    def login(
        self, *, phone: str, password: str, code: str | None = None, device: str | None = None
    ) -> LoginResult: ...

    def refresh(self, *, refresh_token: str) -> TokenPair: ...

    def device_authorization(self) -> DeviceAuthorization: ...

    def device_token(self, *, device_code: str, device: str | None = None) -> TokenPair: ...

    def logout(self, *, refresh_token: str) -> bool: ...

    def authenticate(self, *, access_token: str) -> Principal: ...

    def change_password(self, principal: Principal, *, current: str, new: str) -> None: ...

    # --- two-factor authentication
    def begin_two_factor(self, principal: Principal) -> Enrollment: ...

    def confirm_two_factor(self, principal: Principal, *, code: str) -> list[str]: ...

    def disable_two_factor(self, principal: Principal, *, code: str) -> None: ...

    def two_factor_status(self, principal: Principal) -> TwoFactorStatus: ...

    # --- the wallet
    def balance(self, principal: Principal) -> Balance: ...

    def topup(
        self, principal: Principal, *, amount: Money, source: str, idempotency_key: str
    ) -> TopUp: ...

    def transfer(
        self, principal: Principal, *, to_phone: str, amount: Money, note: str | None,
        idempotency_key: str, code: str | None = None,
    ) -> Transfer: ...  # fmt: skip

    def quote(self, principal: Principal, movement: Movement, amount: Money) -> Quote: ...

    def my_limits(
        self, principal: Principal
    ) -> tuple[Tier, dict[LimitFamily, tuple[Allowance, ...]]]: ...

    def tariffs(self, principal: Principal) -> dict[Movement, Tariff]: ...

    # --- payments
    def billers(self, principal: Principal) -> Sequence[Biller]: ...

    def pay_bill(
        self, principal: Principal, *, biller_id: str, reference: str, amount: Money,
        idempotency_key: str, code: str | None = None,
    ) -> Payment: ...  # fmt: skip

    def pay_airtime(
        self, principal: Principal, *, phone: str | None, amount: Money, idempotency_key: str,
        code: str | None = None,
    ) -> Payment: ...  # fmt: skip

    def top_up_from(
        self, principal: Principal, *, source: str, reference: str, amount: Money,
        idempotency_key: str,
    ) -> Payment: ...  # fmt: skip

    def list_payments(self, principal: Principal, *, limit: int = 20) -> Sequence[Payment]: ...

    def payment(self, principal: Principal, *, payment_id: str) -> tuple[Payment, Biller]: ...

    # --- cash withdrawals
    def request_withdrawal(
        self, principal: Principal, *, amount: Money, channel: Channel, pin: str | None,
        idempotency_key: str, code: str | None = None,
    ) -> IssuedWithdrawal: ...  # fmt: skip

    def cancel_withdrawal(self, principal: Principal, *, withdrawal_id: str) -> Withdrawal: ...

    def list_withdrawals(
        self, principal: Principal, *, limit: int = 20
    ) -> Sequence[Withdrawal]: ...

    # --- the in-app inbox
    def inbox(
        self, principal: Principal, *, unread_only: bool = False, limit: int = 20,
        before: str | None = None,
    ) -> Sequence[Delivery]: ...  # fmt: skip

    def mark_read(self, principal: Principal, *, notification_id: str) -> Delivery: ...

    def notification_preferences(self, principal: Principal) -> Preferences: ...

    def set_notification_preferences(
        self, principal: Principal, *, language: str | None = None, email: bool | None = None,
        sms: bool | None = None, push: bool | None = None,
    ) -> Preferences: ...  # fmt: skip

    # --- people (admins and auditors)
    def show_user(self, *, actor: Principal, phone: str) -> User:
        """Who a phone number belongs to: `mwallet admin users show`, and how a remote `--user
        PHONE` finds the user id the reports' paths take."""
        ...

    # --- changes to a person (admins)
    def set_role(self, *, actor: Principal, phone: str, role: Role) -> User: ...

    def set_tier(self, *, actor: Principal, phone: str, tier: Tier) -> User: ...

    def set_wallet_status(
        self, *, actor: Principal, phone: str, status: AccountStatus
    ) -> AccountStatus: ...

    # --- a person's reports: history pages, statements, usage statistics
    def movements(
        self, principal: Principal, *, phone: str | None = None, user_id: str | None = None,
        where: MovementFilter | None = None, cursor: str | None = None, limit: int = 20,
    ) -> MovementPage: ...  # fmt: skip

    def statement(
        self, principal: Principal, *, phone: str | None = None, user_id: str | None = None,
        start: datetime | None = None, end: datetime | None = None, count: bool = False,
    ) -> AbstractContextManager[Statement]: ...  # fmt: skip

    def usage_statistics(
        self, principal: Principal, *, period: Period | None = None, months: int | None = None,
        phone: str | None = None, user_id: str | None = None,
    ) -> UsageStats: ...  # fmt: skip

    # --- the operators' reports (admins and auditors)
    def volume_report(self, *, actor: Principal, days: int) -> VolumeReport: ...

    def active_users_report(self, *, actor: Principal, days: int) -> ActiveUsers: ...

    def fees_report(self, *, actor: Principal, days: int) -> FeesReport: ...

    def cash_report(
        self, *, actor: Principal, days: int
    ) -> tuple[tuple[TerminalCash, ...], str, str]: ...

    def holds_report(self, *, actor: Principal, limit: int = 100) -> HoldsReport: ...

    def trial_balance(self, *, actor: Principal) -> TrialBalance: ...
