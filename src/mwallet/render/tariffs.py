"""The fee table's document, as `mwallet fees --json` prints it and `GET /wallet/{id}/tariffs`
serves it: per movement its tariff (bands, min, max as decimal strings) or null (free)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mwallet.core.domain.money import Money
from mwallet.core.domain.tariffs import Movement, Tariff, format_percent


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
