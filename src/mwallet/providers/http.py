"""A payment provider over JSON and HTTP (httpx).

Requests:
- `POST {url}/payments` with `{"payment_id", "biller", "reference", "amount", "currency"}`
  (amount a decimal string), `POST {url}/airtime` with `{"payment_id", "operator", "phone",
  "amount", "currency"}`, `POST {url}/charges` (a top-up) with `{"payment_id", "source", "card",
  "amount", "currency"}`; `GET {url}/payments/{payment_id}` for the status of any.
- Every request carries `Idempotency-Key: <payment id>` (a retry cannot charge twice) and is signed:
  `X-Mwallet-Timestamp: <unix seconds>` and `X-Mwallet-Signature: v1=<hex HMAC-SHA256 of
  "<timestamp>.<body>" under the shared secret>`.
- Connect and read timeouts; connection errors and 5xx answers are retried (bounded, with
  backoff); a 2xx answer `{"status": "approved" | "declined" | "pending", "provider_ref", "reason"}`
  is the provider's word. No usable answer, or `pending`, is UNKNOWN: the money stays held until
  the status query or a callback says more. A status query answered 404 means the provider never
  received the payment: nothing was charged, so it is declined.

Callbacks (`verify_callback`): the provider POSTs `{"payment_id", "status", "provider_ref",
"reason"}` signed the same way; a bad signature or a timestamp outside the tolerance window is
refused, and a duplicate settles nothing (the payment's state machine moves once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mwallet.core.domain.payments import Biller, Payment, ProviderAnswer, ProviderOutcome
from mwallet.core.errors import InvalidInput

SIGNATURE_HEADER = "X-Mwallet-Signature"
TIMESTAMP_HEADER = "X-Mwallet-Timestamp"
TOLERANCE_SECONDS = 300
_OUTCOMES = {
    "approved": ProviderOutcome.APPROVED,
    "succeeded": ProviderOutcome.APPROVED,
    "declined": ProviderOutcome.DECLINED,
    "failed": ProviderOutcome.DECLINED,
    "pending": ProviderOutcome.UNKNOWN,
}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


@dataclass(frozen=True)
class HttpProviderSettings:
    url: str
    secret: str
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retries: int = 2  # after the first try: connection errors and 5xx only
    backoff: float = 0.2  # seconds, doubling


class HttpProvider:
    def __init__(
        self, settings: HttpProviderSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        import httpx

        self.settings = settings
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=settings.url.rstrip("/"),
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"User-Agent": "mwallet-payments", "Content-Type": "application/json"},
        )

    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        return self._post("/payments", payment, biller="biller", reference="reference")

    def buy_airtime(self, payment: Payment, operator: Biller) -> ProviderAnswer:
        return self._post("/airtime", payment, biller="operator", reference="phone")

    def charge(self, payment: Payment, source: Biller) -> ProviderAnswer:
        return self._post("/charges", payment, biller="source", reference="card")

    def _post(self, path: str, payment: Payment, *, biller: str, reference: str) -> ProviderAnswer:
        """POST one payment, naming its biller and reference as the endpoint calls them."""
        body = json.dumps(
            {
                "payment_id": payment.id,
                biller: payment.biller_id,
                reference: payment.reference,
                "amount": payment.provider_amount.to_decimal_string(),
                "currency": payment.amount.currency,
            },
            separators=(",", ":"),
        ).encode()
        return self._ask("POST", path, payment.id, body)

    def status(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        return self._ask(
            "GET", f"/payments/{payment.id}", payment.id, b"", missing_is_declined=True
        )

    def _ask(
        self, method: str, path: str, key: str, body: bytes, *, missing_is_declined: bool = False
    ) -> ProviderAnswer:
        import httpx

        last = "no answer"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self._sleep(self.settings.backoff * 2 ** (attempt - 1))
            stamp = str(int(time.time()))
            headers = {
                "Idempotency-Key": key,
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(self.settings.secret, stamp, body),
            }
            try:
                answer = self._client.request(method, path, content=body or None, headers=headers)
            except httpx.TimeoutException:
                # The request may have arrived: only the status query can tell. Not retried here
                # (a retry would be safe, with the key, but could take as long again).
                return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider timed out")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
                continue
            if answer.status_code >= 500:
                last = f"the provider answered {answer.status_code}"
                continue
            if answer.status_code == 404 and missing_is_declined:
                return ProviderAnswer(
                    ProviderOutcome.DECLINED, reason="the provider never received it"
                )
            if not answer.is_success:
                return ProviderAnswer(
                    ProviderOutcome.DECLINED,
                    reason=f"the provider refused it ({answer.status_code})",
                )
            return _answer(answer.content)
        return ProviderAnswer(ProviderOutcome.UNKNOWN, reason=last)

    def close(self) -> None:
        self._client.close()


def _answer(content: bytes) -> ProviderAnswer:
    try:
        document = json.loads(content)
        outcome = _OUTCOMES[str(document["status"]).lower()]
    except (ValueError, KeyError, TypeError):
        return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider's answer is unreadable")
    ref = document.get("provider_ref")
    reason = document.get("reason")
    return ProviderAnswer(
        outcome, provider_ref=str(ref)[:64] if ref else None, reason=str(reason) if reason else None
    )


@dataclass(frozen=True)
class Callback:
    payment_id: str
    answer: ProviderAnswer


def verify_callback(
    secret: str,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> Callback:
    """A provider's callback, if it is genuine and fresh; InvalidInput otherwise."""
    if not timestamp or not signature:
        raise InvalidInput("the callback is not signed")
    try:
        sent = int(timestamp)
    except ValueError:
        raise InvalidInput("the callback's timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent) > tolerance:
        raise InvalidInput("the callback's timestamp is outside the tolerance window")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise InvalidInput("the callback's signature does not match")
    document: Any
    try:
        document = json.loads(body)
        payment_id = str(document["payment_id"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("the callback's body is not a payment result") from None
    answer = _answer(body)
    if answer.outcome is ProviderOutcome.UNKNOWN:
        raise InvalidInput("the callback does not say approved or declined")
    return Callback(payment_id, answer)
