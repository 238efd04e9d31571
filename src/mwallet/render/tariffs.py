"""Fees and limits as documents, as the CLI prints them with `--json` and the server serves them:
the fee table (`mwallet fees`, `GET /wallet/{id}/tariffs`: per movement its tariff, or null when
free), a quote (`mwallet fees MOVEMENT AMOUNT`, `GET /wallet/{id}/quote`) and what is left of a
limit (`mwallet limits`, `GET /wallet/{id}/limits`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mwallet.core.domain.money import Money
from mwallet.core.domain.tariffs import Allowance, Movement, Quote, Tariff, format_percent


def tariff_json(tariff: Tariff | None, currency: str) -> dict[str, Any] | None:
    if tariff is None:
        return None

    def money(minor: int | None) -> str | None:
        return None if minor is None else Money(minor, currency).to_decimal_string()

    return {
        "bands": [
            {
                "up_to": money(band.up_to_minor),
                "flat": money(band.flat_minor),
                "percent": format_percent(band.percent_bp),
            }
            for band in tariff.bands
        ],
        "min": money(tariff.min_minor),
        "max": money(tariff.max_minor),
        "text": tariff.describe(currency),
    }


def tariffs_json(found: Mapping[Movement, Tariff], currency: str) -> dict[str, Any]:
    """Every movement, in order: its tariff, or None when it is free."""
    return {movement.value: tariff_json(found.get(movement), currency) for movement in Movement}


def allowance_json(allowance: Allowance) -> dict[str, Any]:
    return {
        "period": allowance.period.value,
        "limit": None if allowance.limit is None else allowance.limit.to_decimal_string(),
        "used": allowance.used.to_decimal_string(),
        "left": None if allowance.left is None else allowance.left.to_decimal_string(),
    }


def quote_json(quote: Quote) -> dict[str, Any]:
    return {
        "movement": quote.movement.value,
        "amount": quote.amount.to_decimal_string(),
        "fee": quote.fee.to_decimal_string(),
        "total": quote.total.to_decimal_string(),
        "currency": quote.amount.currency,
        "tier": quote.tier.value,
        "within_limits": quote.within_limits,
        "limits": [allowance_json(one) for one in quote.allowances],
    }
