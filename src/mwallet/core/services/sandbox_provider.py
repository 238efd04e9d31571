"""The built-in `sandbox` payment provider: in-process and deterministic, so every path of a
payment can be walked by hand and in tests. Its answer depends only on the customer reference:

| reference starts with | `pay_bill` answers          | `status` (reconcile) answers |
|-----------------------|-----------------------------|------------------------------|
| `9991`                | declined ("account closed") | declined                     |
| `9992`                | no answer (a timeout)       | approved                     |
| `9993`                | no answer (a timeout)       | declined                     |
| `9994`                | no answer (a timeout)       | no answer: stays unknown     |
| anything else         | approved                    | approved                     |

(The sandbox billers take references with a check digit, computed over the whole reference,
magic prefix included.) Airtime answers the same way by the phone number's last four digits:
a number ending `9991` is declined, `9992` times out and is later approved, and so on; a card
top-up by the card number's first four digits, as bills.
"""

from __future__ import annotations

from mwallet.core.domain.payments import (
    Biller,
    Payment,
    Product,
    ProviderAnswer,
    ProviderOutcome,
)

DECLINE, LATE_APPROVE, LATE_DECLINE, NEVER_KNOWN = "9991", "9992", "9993", "9994"


class SandboxProvider:
    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        return self._answer(payment)

    def buy_airtime(self, payment: Payment, operator: Biller) -> ProviderAnswer:
        return self._answer(payment)

    def charge(self, payment: Payment, source: Biller) -> ProviderAnswer:
        return self._answer(payment)

    def _answer(self, payment: Payment) -> ProviderAnswer:
        prefix = _magic(payment)
        if prefix == DECLINE:
            return ProviderAnswer(ProviderOutcome.DECLINED, reason="account closed")
        if prefix in (LATE_APPROVE, LATE_DECLINE, NEVER_KNOWN):
            return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider timed out")
        return ProviderAnswer(ProviderOutcome.APPROVED, provider_ref=_ref(payment))

    def status(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        prefix = _magic(payment)
        if prefix in (DECLINE, LATE_DECLINE):
            return ProviderAnswer(ProviderOutcome.DECLINED, reason="account closed")
        if prefix == NEVER_KNOWN:
            return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider does not know yet")
        return ProviderAnswer(ProviderOutcome.APPROVED, provider_ref=_ref(payment))


def _magic(payment: Payment) -> str:
    """The four digits that choose the answer: a bill's reference's first, a number's last."""
    if payment.product is Product.AIRTIME:
        return payment.reference[-4:]
    return payment.reference[:4]


def _ref(payment: Payment) -> str:
    return f"SBX-{payment.id[-10:]}"
