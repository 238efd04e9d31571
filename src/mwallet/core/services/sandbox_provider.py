"""The built-in `sandbox` payment provider: in-process and deterministic, so every path of a
payment can be walked by hand and in tests. Its answer depends only on the customer reference:

| reference starts with | `pay_bill` answers          | `status` (reconcile) answers |
|-----------------------|-----------------------------|------------------------------|
| `9991`                | declined ("account closed") | declined                     |
| `9992`                | no answer (a timeout)       | approved                     |
| `9993`                | no answer (a timeout)       | declined                     |
| `9994`                | no answer (a timeout)       | no answer: stays unknown     |
| anything else         | approved                    | approved                     |

(The sandbox billers take references with a check digit: `mwallet billers` shows an example of
each; the digit is computed over the whole reference, magic prefix included.)
"""

from __future__ import annotations

from mwallet.core.domain.payments import Biller, Payment, ProviderAnswer, ProviderOutcome

DECLINE, LATE_APPROVE, LATE_DECLINE, NEVER_KNOWN = "9991", "9992", "9993", "9994"


class SandboxProvider:
    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        prefix = payment.reference[:4]
        if prefix == DECLINE:
            return ProviderAnswer(ProviderOutcome.DECLINED, reason="account closed")
        if prefix in (LATE_APPROVE, LATE_DECLINE, NEVER_KNOWN):
            return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider timed out")
        return ProviderAnswer(ProviderOutcome.APPROVED, provider_ref=_ref(payment))

    def status(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        prefix = payment.reference[:4]
        if prefix in (DECLINE, LATE_DECLINE):
            return ProviderAnswer(ProviderOutcome.DECLINED, reason="account closed")
        if prefix == NEVER_KNOWN:
            return ProviderAnswer(ProviderOutcome.UNKNOWN, reason="the provider does not know yet")
        return ProviderAnswer(ProviderOutcome.APPROVED, provider_ref=_ref(payment))


def _ref(payment: Payment) -> str:
    return f"SBX-{payment.id[-10:]}"
