"""The statistics' pure rules: what each posting counts as, the periods, the change per period."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest

from mwallet.core.domain.ledger import EntryKind
from mwallet.core.domain.statistics import (
    Flow,
    MovementGroup,
    Period,
    Tally,
    buckets,
    change,
    classify,
    days,
    parse_period,
    product_of,
    summarize,
)
from mwallet.core.errors import InvalidInput

NOW = datetime(2026, 3, 16, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "outgoing", "product", "category", "state", "expected"),
    [
        ("topup", False, None, None, None, (Flow.IN, "topup")),
        ("transfer", False, None, None, None, (Flow.IN, "received")),
        ("transfer", True, None, None, None, (Flow.OUT, "transfer")),
        ("cash_in", False, None, None, None, (Flow.IN, "cash_in")),
        ("cash_in", True, None, None, None, (Flow.OUT, "cash_in_given")),
        ("capture", False, None, None, None, (Flow.IN, "agent_payout")),
        ("hold", True, None, None, "completed", (Flow.OUT, "withdrawal")),
        ("hold", True, None, None, "pending", (Flow.HELD, "held")),
        ("hold", True, None, None, "authorized", (Flow.HELD, "held")),
        ("hold", True, None, None, "cancelled", None),
        ("hold", True, None, None, "expired", None),
        ("hold", True, None, None, "reversed", None),
        ("release", False, None, None, None, None),
        ("payment_hold", True, "bill", "water", "succeeded", (Flow.OUT, "water")),
        ("payment_hold", True, "bill", "electricity", "succeeded", (Flow.OUT, "electricity")),
        ("payment_hold", True, "bill", "other", "succeeded", (Flow.OUT, "other_bills")),
        ("payment_hold", True, "airtime", "airtime", "succeeded", (Flow.OUT, "airtime")),
        ("payment_hold", True, "bill", "water", "unknown", (Flow.HELD, "held")),
        ("payment_hold", True, "bill", "water", "failed", None),
        ("payment_release", False, None, None, None, None),
        ("something_new", True, None, None, None, (Flow.OUT, "other")),
        ("something_new", False, None, None, None, (Flow.IN, "other_in")),
    ],
)
def test_each_posting_counts_once_as_one_thing(  # noqa: PLR0917 - one per parameter
    kind: str,
    outgoing: bool,
    product: str | None,
    category: str | None,
    state: str | None,
    expected: tuple[Flow, str] | None,
) -> None:
    found = classify(
        kind, outgoing=outgoing, payment_product=product, biller_category=category, state=state
    )
    assert found == expected


def test_products_of_entries() -> None:
    assert [product_of(kind.value, None) for kind in EntryKind] == [
        "transfer", "topup", "withdrawal", "withdrawal", None, "cash_in", "bill", "bill", None,
    ]  # fmt: skip
    assert product_of("payment", "airtime") == "airtime"


def test_months_end_with_the_current_one() -> None:
    spans = buckets(NOW, Period.MONTH, 14)
    assert [span.label for span in spans[:2]] == ["2025-02", "2025-03"]
    assert spans[-1].label == "2026-03"
    assert spans[-1].start == datetime(2026, 3, 1, tzinfo=UTC)
    assert spans[-1].end == datetime(2026, 4, 1, tzinfo=UTC)
    assert all(a.end == b.start for a, b in pairwise(spans))
    december = buckets(datetime(2025, 12, 31, 23, 59, tzinfo=UTC), Period.MONTH, 1)
    assert (december[0].start, december[0].end) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_weeks_start_on_mondays() -> None:
    spans = buckets(NOW, Period.WEEK, 1)  # March 2026: from Monday February 23
    assert [span.label for span in spans] == [
        "2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16",
    ]  # fmt: skip
    assert all(span.start.weekday() == 0 for span in spans)


def test_days_end_today() -> None:
    spans = days(NOW, 3)
    assert [span.label for span in spans] == ["2026-03-14", "2026-03-15", "2026-03-16"]


@pytest.mark.parametrize("months", [0, -1, 37])
def test_months_out_of_range(months: int) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 36"):
        buckets(NOW, Period.MONTH, months)


def test_periods_by_name() -> None:
    assert parse_period(" Week ") is Period.WEEK
    with pytest.raises(InvalidInput, match="use month or week"):
        parse_period("year")


def test_change_in_percent() -> None:
    assert change(13050, 3500) == -73.2
    assert change(100, 250) == 150.0
    assert change(0, 10) is None


def test_summarize_sums_per_period_and_category() -> None:
    spans = buckets(NOW, Period.MONTH, 2)
    groups = [
        MovementGroup(0, "transfer", True, None, None, None, 2, -5050, 50),
        MovementGroup(1, "transfer", True, None, None, None, 1, -1000, 0),
        MovementGroup(1, "hold", True, None, None, "expired", 1, -2000, 0),
        MovementGroup(1, "release", False, None, None, None, 1, 2000, 0),
        MovementGroup(1, "hold", True, None, None, "pending", 1, -3050, 50),
        MovementGroup(1, "topup", False, None, None, None, 1, 9000, 0),
    ]
    february, march = summarize(groups, spans)
    assert february.money_out == {"transfer": Tally(2, 5000, 50)}
    assert march.money_out == {"transfer": Tally(1, 1000)}
    assert march.money_in == {"topup": Tally(1, 9000)}
    assert march.held == Tally(1, 3000, 50)
    assert Tally(2, 5000, 50).average == 2500
