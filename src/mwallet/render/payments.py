"""A biller as a document, as `mwallet billers --json` prints it and `GET /payments/billers`
serves it (its amount range as decimal strings)."""

from __future__ import annotations

from typing import Any

from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import Biller


def biller_json(biller: Biller) -> dict[str, Any]:
    return {
        "id": biller.id,
        "name": biller.name,
        "category": biller.category.value,
        "currency": biller.currency,
        "min": Money(biller.min_minor, biller.currency).to_decimal_string(),
        "max": Money(biller.max_minor, biller.currency).to_decimal_string(),
        "reference_pattern": biller.pattern,
        "check_digit": biller.check.value,
        "provider": biller.provider,
        "active": biller.active,
    }
