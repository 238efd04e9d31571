"""`HttpWalletService`: the `UserService` interface over the HTTP API, for `mwallet --server URL`.

Each call is one request (Bearer access token, Idempotency-Key on the POSTs that move money); the
JSON answer is read back into the same domain objects the local service returns, and a
problem+json answer into the same core error (`remote.errors`), so a command prints the same
output and leaves with the same exit code whichever implementation it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from mwallet.core.domain.admin_reports import (
    ActiveUsers,
    FeesReport,
    HoldsReport,
    TerminalCash,
    TrialBalance,
    VolumeReport,
)
from mwallet.core.domain.ids import is_id
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.movements import MovementFilter
from mwallet.core.domain.notifications import Channel as NotifyChannel
from mwallet.core.domain.notifications import Delivery, DeliveryState, Preferences, no_notification
from mwallet.core.domain.payments import (
    Biller,
    CheckDigit,
    Payment,
    PaymentState,
    Product,
    no_payment,
)
from mwallet.core.domain.payments import Category as BillerCategory
from mwallet.core.domain.roles import Permission, Role, allows
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.domain.statistics import Period as UsagePeriod
from mwallet.core.domain.statistics import UsageStats
from mwallet.core.domain.tariffs import (
    Allowance,
    Band,
    LimitFamily,
    Movement,
    Period,
    Quote,
    Tariff,
    Tier,
    parse_percent,
)
from mwallet.core.domain.transfers import TopUp, Transfer, check_idempotency_key
from mwallet.core.domain.users import Principal, User, normalize_phone
from mwallet.core.domain.withdrawals import Channel, Withdrawal, WithdrawalState, no_withdrawal
from mwallet.core.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    InvalidInput,
    NotAuthenticated,
    WalletError,
)
from mwallet.core.services.accounts import LoginResult
from mwallet.core.services.device_grants import DeviceAuthorization
from mwallet.core.services.history import MovementPage, Owner, Statement
from mwallet.core.services.two_factor import Enrollment, TwoFactorStatus
from mwallet.core.services.wallets import Balance
from mwallet.core.services.withdrawals import IssuedWithdrawal
from mwallet.remote import admin_reports, reports
from mwallet.remote.errors import error_from
from mwallet.render.movements import POSTINGS_HEADER

TIMEOUT_SECONDS = 30.0
CLIENT_ID = "mwallet-cli"  # a public client (RFC 8628): it holds no secret
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Tries to read usage statistics and trends of the same movements (one may come in between).
USAGE_TRIES = 3
# Query parameters: a mapping, or pairs (a name may repeat: `type`).
Params = Mapping[str, str] | list[tuple[str, str]]


def _query(params: Params | None) -> Mapping[str, str] | tuple[tuple[str, str], ...] | None:
    return tuple(params) if isinstance(params, list) else params


# The user id in a report's path for someone a person who may not read the books asked about:
# never anyone's, and refused before any look-up.
NOBODY = "-"


class HttpWalletService:
    """A person's use cases on a wallet server. `transport`: httpx's port (tests may pass one)."""

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)
        self._tokens: dict[str, str] = {}  # user id -> the access token that authenticated them
        self._instance: Mapping[str, Any] | None = None  # /readyz: currency and phone region
        self._step_up: Money | None = None

    def close(self) -> None:
        self._http.close()

    # --- the wire ------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, token: str | None = None,
        json: Mapping[str, Any] | None = None, data: Mapping[str, str] | None = None,
        params: Params | None = None, key: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """One request; a problem+json answer is raised as the core error it names."""
        if key is not None:  # the services' rule, before a key that is no header value is sent
            check_idempotency_key(key)
        try:
            answer = self._http.request(
                method, path, json=json, data=data, params=_query(params),
                headers=self._headers(token, key),
            )  # fmt: skip
        except httpx.TransportError as exc:
            raise ConfigurationError(f"cannot reach the server {self.base_url}: {exc}") from exc
        return self._checked(answer)

    @contextmanager
    def _streamed(
        self, path: str, principal: Principal, params: Params
    ) -> Iterator[tuple[httpx.Headers, Iterator[str]]]:
        """A GET whose body is read as it arrives, as text chunks (closed on leaving), with the
        answer's headers."""
        headers = self._headers(self._token(principal), None)
        try:
            with self._http.stream("GET", path, params=_query(params), headers=headers) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    self._checked(answer)
                yield answer.headers, self._chunks(answer)
        except httpx.TransportError as exc:
            raise ConfigurationError(f"the server {self.base_url} broke off: {exc}") from exc

    @staticmethod
    def _chunks(answer: httpx.Response) -> Iterator[str]:
        yield from answer.iter_text()

    @staticmethod
    def _headers(token: str | None, key: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    @staticmethod
    def _checked(answer: httpx.Response) -> httpx.Response:
        if answer.status_code >= 400 and answer.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            raise error_from(answer)
        if answer.status_code >= 400 and not answer.headers.get("content-type", "").startswith(
            "application/json"
        ):
            raise error_from(answer)
        return answer

    def _json(self, method: str, path: str, principal: Principal | None = None,
              **kwargs: Any) -> Any:  # fmt: skip
        token = self._token(principal) if principal is not None else None
        return self.request(method, path, token=token, **kwargs).json()

    def _token(self, principal: Principal) -> str:
        token = self._tokens.get(principal.user_id)
        if token is None:
            raise NotAuthenticated("you are not logged in: run `mwallet login`")
        return token

    def _money(self, text: str, currency: str) -> Money:
        return Money.parse(text, currency, allow_zero=True)

    # --- the instance ---------------------------------------------------------------------------
    def _settings(self) -> Mapping[str, Any]:
        if self._instance is None:
            self._instance = self._json("GET", "/readyz")
        return self._instance

    @property
    def currency(self) -> str:
        return str(self._settings()["currency"])

    def _e164(self, phone: str) -> str:
        """A phone number as the server's services read it (`normalize_phone` with the instance's
        region): compared with the caller's own and put in a path in this form only, so a
        national number is one's own as on a local database, and a malformed one is refused here
        with the local error (a `/` in it would otherwise name another endpoint)."""
        region = self._settings().get("region")
        return normalize_phone(phone, None if region is None else str(region))

    def parse_money(self, text: str, *, allow_zero: bool = False) -> Money:
        return Money.parse(text, self.currency, allow_zero=allow_zero)

    def step_up_amount(self) -> Money:
        if self._step_up is None:
            raise NotAuthenticated("you are not logged in: run `mwallet login`")
        return self._step_up

    # --- accounts and sessions ------------------------------------------------------------------
    def register(
        self, *, phone: str, display_name: str, email: str | None, password: str,
        idempotency_key: str,
    ) -> User:  # fmt: skip
        body = {"phone": phone, "name": display_name, "password": password}
        if email is not None:
            body["email"] = email
        return user_from(self._json("POST", "/auth/register", json=body, key=idempotency_key))

    def login(
        self, *, phone: str, password: str, code: str | None = None, device: str | None = None
    ) -> LoginResult:
        body = {"phone": phone, "password": password}
        if code is not None:
            body["code"] = code
        if device is not None:
            body["device_id"] = device
        pair = tokens_from(self._json("POST", "/auth/login", json=body))
        return LoginResult(tokens=pair, principal=self.authenticate(access_token=pair.access_token))

    def refresh(self, *, refresh_token: str) -> TokenPair:
        return tokens_from(
            self._json("POST", "/auth/refresh", json={"refresh_token": refresh_token})
        )

    def device_authorization(self) -> DeviceAuthorization:
        found = self._json("POST", "/oauth/device_authorization", data={"client_id": CLIENT_ID})
        return DeviceAuthorization(
            device_code=found["device_code"], user_code=found["user_code"],
            expires_at=datetime.now(UTC) + timedelta(seconds=int(found["expires_in"])),
            interval=int(found["interval"]), verification_uri=found["verification_uri"],
            verification_uri_complete=found.get("verification_uri_complete"),
        )  # fmt: skip

    def device_token(self, *, device_code: str, device: str | None = None) -> TokenPair:
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT_ID}
        if device is not None:
            form["device_id"] = device
        return tokens_from(self._json("POST", "/oauth/token", data=form))

    def logout(self, *, refresh_token: str) -> bool:
        self.request("POST", "/auth/logout", json={"refresh_token": refresh_token})
        return True

    def authenticate(self, *, access_token: str) -> Principal:
        found = self.request("GET", "/auth/me", token=access_token).json()
        principal = Principal(
            user_id=found["user_id"], phone=found["phone"], display_name=found["display_name"],
            role=Role(found["role"]), scopes=frozenset(found["scopes"]),
        )  # fmt: skip
        self._tokens[principal.user_id] = access_token
        return principal

    def change_password(self, principal: Principal, *, current: str, new: str) -> None:
        self._json_or_none("POST", "/auth/password", principal,
                           json={"current": current, "new": new})  # fmt: skip

    def _json_or_none(self, method: str, path: str, principal: Principal, **kwargs: Any) -> None:
        self.request(method, path, token=self._token(principal), **kwargs)

    # --- two-factor authentication --------------------------------------------------------------
    def begin_two_factor(self, principal: Principal) -> Enrollment:
        found = self._json("POST", "/auth/2fa", principal, json={})
        return Enrollment(secret=found["secret"], uri=found["otpauth_uri"])

    def confirm_two_factor(self, principal: Principal, *, code: str) -> list[str]:
        found = self._json("POST", "/auth/2fa/confirm", principal, json={"code": code})
        return [str(one) for one in found["recovery_codes"]]

    def disable_two_factor(self, principal: Principal, *, code: str) -> None:
        self._json_or_none("POST", "/auth/2fa/disable", principal, json={"code": code})

    def two_factor_status(self, principal: Principal) -> TwoFactorStatus:
        found = self._json("GET", "/auth/2fa", principal)
        self._step_up = self.parse_money(found["step_up_amount"], allow_zero=True)
        return TwoFactorStatus(enabled=found["enabled"], pending=found["pending"],
                               recovery_codes_left=found["recovery_codes_left"])  # fmt: skip

    # --- the wallet -----------------------------------------------------------------------------
    def balance(self, principal: Principal) -> Balance:
        found = self._json("GET", f"/wallet/{principal.user_id}/balance", principal)
        currency = found["currency"]
        return Balance(
            user_id=found["user_id"], phone=principal.phone,
            balance=self._money(found["balance"], currency),
            available=self._money(found["available"], currency),
        )  # fmt: skip

    def topup(
        self, principal: Principal, *, amount: Money, source: str, idempotency_key: str
    ) -> TopUp:
        found = self._json(
            "POST", f"/wallet/{principal.user_id}/topup", principal,
            json={"amount": amount.to_decimal_string(), "source": source}, key=idempotency_key,
        )  # fmt: skip
        return TopUp(
            id=found["topup_id"], user_id=principal.user_id, source=found["source"],
            amount=self._money(found["amount"], found["currency"]),
            created_at=_time(found["created_at"]),
        )  # fmt: skip

    def transfer(
        self, principal: Principal, *, to_phone: str, amount: Money, note: str | None,
        idempotency_key: str, code: str | None = None,
    ) -> Transfer:  # fmt: skip
        body = {"to": to_phone, "amount": amount.to_decimal_string()}
        if note is not None:
            body["note"] = note
        if code is not None:
            body["code"] = code
        found = self._json("POST", f"/wallet/{principal.user_id}/transfer", principal,
                           json=body, key=idempotency_key)  # fmt: skip
        currency = found["currency"]
        return Transfer(
            id=found["transfer_id"], sender_user_id=principal.user_id,
            sender_phone=found["from"], recipient_user_id="", recipient_phone=found["to"],
            amount=self._money(found["amount"], currency), note=found["note"],
            created_at=_time(found["created_at"]),
            fee_minor=self._money(found["fee"], currency).minor,
        )  # fmt: skip

    def quote(self, principal: Principal, movement: Movement, amount: Money) -> Quote:
        found = self._json(
            "GET", f"/wallet/{principal.user_id}/quote", principal,
            params={"movement": movement.value, "amount": amount.to_decimal_string()},
        )  # fmt: skip
        currency = found["currency"]
        return Quote(
            movement=Movement(found["movement"]), amount=self._money(found["amount"], currency),
            fee=self._money(found["fee"], currency), tier=Tier(found["tier"]),
            allowances=tuple(self._allowance(one, currency) for one in found["limits"]),
        )  # fmt: skip

    def my_limits(
        self, principal: Principal
    ) -> tuple[Tier, dict[LimitFamily, tuple[Allowance, ...]]]:
        found = self._json("GET", f"/wallet/{principal.user_id}/limits", principal)
        currency = found["currency"]
        return Tier(found["tier"]), {
            LimitFamily(family): tuple(self._allowance(one, currency) for one in allowances)
            for family, allowances in found["limits"].items()
        }

    def tariffs(self, principal: Principal) -> dict[Movement, Tariff]:
        found = self._json("GET", f"/wallet/{principal.user_id}/tariffs", principal)
        currency = found["currency"]
        return {
            Movement(movement): tariff_from(one, currency)
            for movement, one in found["tariffs"].items()
            if one is not None
        }

    def _allowance(self, found: Mapping[str, Any], currency: str) -> Allowance:
        limit = found["limit"]
        return Allowance(
            period=Period(found["period"]),
            limit=None if limit is None else self._money(limit, currency),
            used=self._money(found["used"], currency),
        )

    # --- payments -------------------------------------------------------------------------------
    def billers(self, principal: Principal) -> Sequence[Biller]:
        found = self._json("GET", "/payments/billers", principal)
        return [biller_from(one) for one in found["billers"]]

    def pay_bill(
        self, principal: Principal, *, biller_id: str, reference: str, amount: Money,
        idempotency_key: str, code: str | None = None,
    ) -> Payment:  # fmt: skip
        body = {"biller": biller_id, "reference": reference, "amount": amount.to_decimal_string()}
        if code is not None:
            body["code"] = code
        return self._payment("/payments/bill", principal, body, idempotency_key)

    def pay_airtime(
        self, principal: Principal, *, phone: str | None, amount: Money, idempotency_key: str,
        code: str | None = None,
    ) -> Payment:  # fmt: skip
        body = {"amount": amount.to_decimal_string()}
        if phone is not None:
            body["phone"] = phone
        if code is not None:
            body["code"] = code
        return self._payment("/payments/topup", principal, body, idempotency_key)

    def top_up_from(
        self, principal: Principal, *, source: str, reference: str, amount: Money,
        idempotency_key: str,
    ) -> Payment:  # fmt: skip
        body = {"source": source, "reference": reference, "amount": amount.to_decimal_string()}
        return self._payment("/payments/card-topup", principal, body, idempotency_key)

    def _payment(self, path: str, principal: Principal, body: Mapping[str, str],
                 key: str) -> Payment:  # fmt: skip
        found = self._json("POST", path, principal, json=body, key=key)
        return payment_from(found, principal.user_id)

    def list_payments(self, principal: Principal, *, limit: int = 20) -> Sequence[Payment]:
        found = self._json("GET", "/payments", principal, params={"limit": str(limit)})
        return [payment_from(one, principal.user_id) for one in found["payments"]]

    def payment(self, principal: Principal, *, payment_id: str) -> tuple[Payment, Biller]:
        found = self._json("GET", f"/payments/{_typed_id(payment_id, no_payment)}", principal)
        return payment_from(found["payment"], principal.user_id), biller_from(found["biller"])

    # --- cash withdrawals -----------------------------------------------------------------------
    def request_withdrawal(
        self, principal: Principal, *, amount: Money, channel: Channel, pin: str | None,
        idempotency_key: str, code: str | None = None,
    ) -> IssuedWithdrawal:  # fmt: skip
        body = {"amount": amount.to_decimal_string(), "channel": channel.value}
        if pin is not None:
            body["pin"] = pin
        if code is not None:
            body["code"] = code
        found = self._json("POST", "/atm/withdrawal-request", principal, json=body,
                           key=idempotency_key)  # fmt: skip
        return IssuedWithdrawal(
            withdrawal=withdrawal_from(found, principal.user_id), code=found["code"],
            pin=found["pin"], qr_payload=found["qr_payload"],
        )  # fmt: skip

    def cancel_withdrawal(self, principal: Principal, *, withdrawal_id: str) -> Withdrawal:
        path = f"/atm/withdrawals/{_typed_id(withdrawal_id, no_withdrawal)}/cancel"
        found = self._json("POST", path, principal, json={})
        return withdrawal_from(found, principal.user_id)

    def list_withdrawals(self, principal: Principal, *, limit: int = 20) -> Sequence[Withdrawal]:
        found = self._json("GET", "/atm/withdrawals", principal, params={"limit": str(limit)})
        return [withdrawal_from(one, principal.user_id) for one in found["withdrawals"]]

    # --- the in-app inbox -----------------------------------------------------------------------
    def inbox(
        self, principal: Principal, *, unread_only: bool = False, limit: int = 20,
        before: str | None = None,
    ) -> Sequence[Delivery]:  # fmt: skip
        params = {"limit": str(limit), "unread": "true" if unread_only else "false"}
        if before is not None:
            params["before"] = before
        found = self._json("GET", "/notifications", principal, params=params)
        return [delivery_from(one, principal.user_id) for one in found["notifications"]]

    def mark_read(self, principal: Principal, *, notification_id: str) -> Delivery:
        path = f"/notifications/{_typed_id(notification_id, no_notification)}/read"
        found = self._json("POST", path, principal, json={})
        return delivery_from(found, principal.user_id)

    def notification_preferences(self, principal: Principal) -> Preferences:
        found = self._json("GET", "/notifications/preferences", principal)
        return preferences_from(found, principal.user_id)

    def set_notification_preferences(
        self, principal: Principal, *, language: str | None = None, email: bool | None = None,
        sms: bool | None = None, push: bool | None = None,
    ) -> Preferences:  # fmt: skip
        wanted = {"language": language, "email": email, "sms": sms, "push": push}
        body = {name: value for name, value in wanted.items() if value is not None}
        found = self._json("PUT", "/notifications/preferences", principal, json=body)
        return preferences_from(found, principal.user_id)

    # --- a person's reports ---------------------------------------------------------------------
    def movements(
        self, principal: Principal, *, phone: str | None = None, user_id: str | None = None,
        where: MovementFilter | None = None, cursor: str | None = None, limit: int = 20,
    ) -> MovementPage:  # fmt: skip
        owner = self._owner(principal, phone, user_id)
        where = where or MovementFilter()
        params = [("limit", str(limit)), *reports.day_params(where.start, where.end)]
        params += [("type", kind.value) for kind in sorted(where.types)]
        if cursor is not None:
            params.append(("cursor", cursor))
        if where.counterparty is not None:
            params.append(("counterparty", where.counterparty))
        for name, bound in (("min", where.min_minor), ("max", where.max_minor)):
            if bound is not None:
                params.append((name, Money(bound, self.currency).to_decimal_string()))
        found = self._json("GET", f"/reports/transactions/{owner.user_id}", principal,
                           params=params)  # fmt: skip
        return reports.movement_page_from(found, owner)

    def statement(
        self, principal: Principal, *, phone: str | None = None, user_id: str | None = None,
        start: datetime | None = None, end: datetime | None = None, count: bool = False,
    ) -> AbstractContextManager[Statement]:  # fmt: skip
        """The statement's CSV, read as it streams in; see `remote.reports.StatementReader`.
        `count`: the server counts the postings first (`postings`, for a progress bar)."""
        owner = self._owner(principal, phone, user_id)
        MovementFilter(start=start, end=end)  # the local statement's refusal of an empty period
        params = [("format", "csv"), *reports.day_params(start, end)]
        if count:
            params.append(("count", "true"))
        return self._statement(principal, params, owner, (start, end))

    @contextmanager
    def _statement(
        self, principal: Principal, params: Params, owner: Owner,
        span: tuple[datetime | None, datetime | None],
    ) -> Iterator[Statement]:  # fmt: skip
        path = f"/reports/statement/{owner.user_id}"
        with self._streamed(path, principal, params) as (headers, chunks):
            postings = reports.postings_of(headers.get(POSTINGS_HEADER))
            yield reports.StatementReader(chunks, owner, *span, postings=postings).statement

    def usage_statistics(
        self, principal: Principal, *, period: UsagePeriod | None = None,
        months: int | None = None, phone: str | None = None, user_id: str | None = None,
    ) -> UsageStats:  # fmt: skip
        """Two documents of the server's (statistics, and trends per period) read as one."""
        owner = self._owner(principal, phone, user_id)
        params = reports.period_params(period, months)
        for _ in range(USAGE_TRIES):
            stats = self._json("GET", f"/reports/stats/{owner.user_id}", principal, params=params)
            trends = self._json("GET", f"/reports/trends/{owner.user_id}", principal,
                                params=params)  # fmt: skip
            found = reports.usage_from(stats, trends, owner.user_id)
            if found is not None:
                return found
        raise ConcurrencyConflict("the movements kept changing while reading them: try again")

    def _owner(self, principal: Principal, phone: str | None, user_id: str | None) -> Owner:
        """Whose reports: the principal's own, or (admins, auditors) another person's. The
        reports' paths name people by user id, so a phone is first looked up (`show_user`);
        one's own number, in whatever form, needs no look-up, as on a local database. Nor does
        anyone's for a person who may not read the books: the report's own endpoint refuses
        them (`NOBODY`), in the words and with the audit record of the local refusal ("may not
        read another person's history"), not as a refused look-up."""
        if phone is not None and user_id is not None:
            raise InvalidInput("name the wallet by phone or by user id, not both")
        if phone is not None:
            if self._e164(phone) == principal.phone:
                return Owner(principal.user_id, principal.phone, principal.display_name)
            if not allows(principal.role, Permission.READ_BOOKS):
                return Owner(NOBODY, "", "")
            found = self.show_user(actor=principal, phone=phone)
            return Owner(found.id, found.phone, found.display_name)
        if user_id is None or user_id == principal.user_id:
            return Owner(principal.user_id, principal.phone, principal.display_name)
        return Owner(user_id, "", "")

    # --- people ---------------------------------------------------------------------------------
    def show_user(self, *, actor: Principal, phone: str) -> User:
        """Who a phone number belongs to (admins and auditors)."""
        path = f"/admin/users/by-phone/{quote(self._e164(phone), safe='+')}"
        return user_from(self._json("GET", path, actor))

    # --- changes to a person (admins) -----------------------------------------------------------
    def set_role(self, *, actor: Principal, phone: str, role: Role) -> User:
        found = self._json("POST", "/admin/users/role", actor,
                           json={"phone": phone, "role": role.value})  # fmt: skip
        return user_from(found)

    def set_tier(self, *, actor: Principal, phone: str, tier: Tier) -> User:
        found = self._json("POST", "/admin/users/tier", actor,
                           json={"phone": phone, "tier": tier.value})  # fmt: skip
        return user_from(found)

    def set_wallet_status(
        self, *, actor: Principal, phone: str, status: AccountStatus
    ) -> AccountStatus:
        found = self._json("POST", "/admin/wallets/status", actor,
                           json={"phone": phone, "status": status.value})  # fmt: skip
        return AccountStatus(found["status"])

    # --- the operators' reports (admins and auditors) -------------------------------------------
    def volume_report(self, *, actor: Principal, days: int) -> VolumeReport:
        found = self._json("GET", "/admin/reports/volumes", actor, params=_days(days))
        return admin_reports.volumes_from(found)

    def active_users_report(self, *, actor: Principal, days: int) -> ActiveUsers:
        found = self._json("GET", "/admin/reports/active", actor, params=_days(days))
        return admin_reports.active_from(found)

    def fees_report(self, *, actor: Principal, days: int) -> FeesReport:
        found = self._json("GET", "/admin/reports/fees", actor, params=_days(days))
        return admin_reports.fees_from(found)

    def cash_report(
        self, *, actor: Principal, days: int
    ) -> tuple[tuple[TerminalCash, ...], str, str]:
        found = self._json("GET", "/admin/reports/cash", actor, params=_days(days))
        return admin_reports.cash_from(found)

    def holds_report(self, *, actor: Principal, limit: int = 100) -> HoldsReport:
        found = self._json("GET", "/admin/reports/holds", actor, params={"limit": str(limit)})
        return admin_reports.holds_from(found)

    def trial_balance(self, *, actor: Principal) -> TrialBalance:
        return admin_reports.trial_from(self._json("GET", "/admin/reports/trial-balance", actor))


def _days(days: int) -> dict[str, str]:
    return {"days": str(days)}


# --- JSON back into domain objects ---------------------------------------------------------------
def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _time_or_none(text: str | None) -> datetime | None:
    return None if text is None else _time(text)


def tokens_from(found: Mapping[str, Any]) -> TokenPair:
    return TokenPair(
        access_token=found["access_token"], access_expires_at=_time(found["access_expires_at"]),
        refresh_token=found["refresh_token"],
        refresh_expires_at=_time_or_none(found["refresh_expires_at"]), family_id=None,
    )  # fmt: skip


def user_from(found: Mapping[str, Any]) -> User:
    """`render.users.user_json` back into a `User`."""
    return User(
        id=found["user_id"], phone=found["phone"], display_name=found["display_name"],
        email=found["email"], created_at=_time(found["created_at"]),
        role=Role(found["role"]), tier=Tier(found["tier"]),
    )  # fmt: skip


def biller_from(found: Mapping[str, Any]) -> Biller:
    currency = found["currency"]
    return Biller(
        id=found["id"], name=found["name"], category=BillerCategory(found["category"]),
        currency=currency, min_minor=Money.parse(found["min"], currency).minor,
        max_minor=Money.parse(found["max"], currency).minor, provider=found["provider"],
        pattern=found["reference_pattern"], check=CheckDigit(found["check_digit"]),
        active=found["active"],
    )  # fmt: skip


def payment_from(found: Mapping[str, Any], user_id: str) -> Payment:
    currency = found["currency"]
    return Payment(
        id=found["payment_id"], user_id=user_id, biller_id=found["biller"],
        reference=found["reference"], amount=Money.parse(found["amount"], currency),
        fee=Money.parse(found["fee"], currency, allow_zero=True),
        state=PaymentState(found["state"]), created_at=_time(found["created_at"]),
        updated_at=_time(found["updated_at"]), provider_ref=found["provider_ref"],
        reason=found["reason"], product=Product(found["product"]),
    )  # fmt: skip


def withdrawal_from(found: Mapping[str, Any], user_id: str) -> Withdrawal:
    currency = found["currency"]
    created = _time(found["created_at"])
    return Withdrawal(
        id=found["withdrawal_id"], user_id=user_id,
        amount=Money.parse(found["amount"], currency), channel=Channel(found["channel"]),
        state=WithdrawalState(found["state"]), created_at=created,
        expires_at=_time(found["expires_at"]), pin_attempts=0,
        terminal_id=found["terminal_id"], updated_at=created,
        fee=Money.parse(found["fee"], currency, allow_zero=True),
    )  # fmt: skip


def delivery_from(found: Mapping[str, Any], user_id: str) -> Delivery:
    created = _time(found["created_at"])
    return Delivery(
        id=found["notification_id"], event_id=found["event_id"], user_id=user_id,
        channel=NotifyChannel(found["channel"]), kind=found["kind"], address=found["to"],
        title=found["title"], body=found["body"], state=DeliveryState(found["state"]),
        attempts=found["attempts"], created_at=created, next_attempt_at=created,
        sent_at=_time_or_none(found["sent_at"]), read_at=_time_or_none(found["read_at"]),
        last_error=found["last_error"],
    )  # fmt: skip


def preferences_from(found: Mapping[str, Any], user_id: str) -> Preferences:
    return Preferences(user_id=user_id, language=found["language"], email=found["email"],
                       sms=found["sms"], push=found["push"])  # fmt: skip


def tariff_from(found: Mapping[str, Any], currency: str) -> Tariff:
    """A tariff of the fee table (`render.tariffs`) back into minor units and basis points."""

    def minor(text: str) -> int:
        return Money.parse(text, currency, allow_zero=True).minor

    return Tariff(
        tuple(
            Band(
                None if band["up_to"] is None else minor(band["up_to"]),
                minor(band["flat"]), parse_percent(band["percent"]),
            )
            for band in found["bands"]
        ),
        min_minor=minor(found["min"]),
        max_minor=None if found["max"] is None else minor(found["max"]),
    )  # fmt: skip


def _typed_id(typed: str, missing: Callable[[str], WalletError]) -> str:
    """An id a person typed, for a URL's path: what cannot be an id names nothing, and is refused
    here as the service refuses it (`missing`), rather than sent (a control character or an
    empty segment is no URL at all)."""
    cleaned = typed.strip()
    if not is_id(cleaned):
        raise missing(typed)
    return cleaned
