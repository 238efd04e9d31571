"""The remote CLI reads the operators' reports back exactly: what `mwallet.render.reports` wrote
from domain values (through JSON text, as the server sends it) is read into equal domain values,
amounts to the minor unit, the window of days rebuilt, a broken document refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mwallet.core.domain.admin_reports import (
    AccountLine,
    ActiveDay,
    ActiveUsers,
    FeesReport,
    HoldsReport,
    OutstandingHold,
    ProductDay,
    TerminalCash,
    TrialBalance,
    VolumeReport,
)
from mwallet.core.domain.ledger import LedgerReport
from mwallet.core.domain.statistics import days
from mwallet.remote.admin_reports import (
    active_from,
    cash_from,
    fees_from,
    holds_from,
    trial_from,
    volumes_from,
    window,
)
from mwallet.remote.reports import BadAnswer
from mwallet.render import reports

NOW = datetime(2026, 3, 1, 14, 5, 9, tzinfo=UTC)  # the window crosses February's end
SPANS = days(NOW, 3)


def sent(document: dict[str, Any]) -> Any:
    return json.loads(json.dumps(document))


def test_the_window_is_rebuilt_from_its_first_and_last_day() -> None:
    assert window("2026-02-27", "2026-03-01") == SPANS
    assert window("2026-03-01", "2026-03-01") == days(NOW, 1)
    for first, last in (("2026-03-02", "2026-03-01"), ("27/02/2026", "2026-03-01")):
        with pytest.raises(BadAnswer):
            window(first, last)


def test_volumes_and_fees_round_trip() -> None:
    rows = (
        ProductDay("2026-02-27", "transfer", "USD", 4, 80_00, 0),
        ProductDay("2026-03-01", "withdrawal", "USD", 1, 1_500_000_000_00, 50),  # past a maximum
        ProductDay("2026-03-01", "topup", "JPY", 2, 1200, 0),
    )
    volumes = VolumeReport(SPANS, rows)
    assert volumes_from(sent(reports.volumes_json(volumes))) == volumes
    fees = FeesReport(VolumeReport(SPANS, rows[1:2]), {"USD": 50, "JPY": 0})
    assert fees_from(sent(reports.fees_json(fees))) == fees


def test_active_users_round_trip() -> None:
    counts = zip(SPANS, (4, 0, 2), strict=True)
    found = ActiveUsers(tuple(ActiveDay(one.label, n) for one, n in counts), 5, 9)
    assert active_from(sent(reports.active_json(found))) == found


def test_cash_at_terminals_round_trips() -> None:
    terminals = (
        TerminalCash("t-atm", "atm", "ATM Baixa 01", None, "USD", 3, 60_00, 0, 0, -60_00, 940_00),
        TerminalCash("t-agent", "agent", "Agent Orange", "+258841234599", "USD", 0, 0, 1, 30_00,
                     170_00, None),
        # Each terminal's amounts in its own currency's digits (a terminal without an account
        # gets the instance's from the use case: `services.statistics.cash_flows`).
        TerminalCash("t-kwd", "atm", "ATM Nova", None, "KWD", 0, 0, 0, 0, 0, 200_000),
    )  # fmt: skip
    found = (terminals, SPANS[0].label, SPANS[-1].label)
    assert cash_from(sent(reports.cash_json(*found))) == found


def test_holds_round_trip() -> None:
    at = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)  # documents keep whole seconds
    found = HoldsReport(
        (
            OutstandingHold("withdrawal", "w-1", "+258841234501", 40_50, "USD", "pending", at),
            OutstandingHold("bill", "p-1", "+258841234501", 12_00, "USD", "unknown", at),
        ),
        3,
        {"USD": 62_50},
        {"USD": 62_00},
    )
    back = holds_from(sent(reports.holds_json(found)))
    assert back == found
    assert not back.matches


@pytest.mark.parametrize("problems", [(), ("account fees:USD: stored balance 45 but its postings "
                                           "sum to 50",)])  # fmt: skip
def test_a_trial_balance_round_trips_sound_or_not(problems: tuple[str, ...]) -> None:
    accounts = (
        AccountLine("fees:USD", "fees", "USD", 50, "active"),
        AccountLine("funding:sandbox:USD", "funding", "USD", -1_500_000_000_50, "active"),
        AccountLine("wallet:u-1", "wallet", "USD", 1_500_000_000_00, "frozen"),
    )
    verification = LedgerReport(3, 7, 15, {"USD": 0}, problems)
    found = TrialBalance(accounts, verification, NOW)
    back = trial_from(sent(reports.trial_json(found)))
    assert back == found
    assert back.matches is not bool(problems)


def test_a_document_with_an_unreadable_amount_is_refused() -> None:
    holds = {"holds": [], "count": 0, "held": {"USD": "1.5"}, "holds_accounts": {}}
    with pytest.raises(BadAnswer):
        holds_from(holds)
