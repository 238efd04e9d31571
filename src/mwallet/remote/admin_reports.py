"""The operators' reports (`GET /admin/reports/…`, `render.reports`) back into the domain values
`WalletService` returns, for `HttpWalletService`: volumes, active users, fees, cash at terminals,
holds and the trial balance.

Exact, as the rest of the client (`remote.reports.minor`): amounts from their decimal strings into
integer minor units, times from RFC 3339. The window of days is rebuilt from its first and last
day, as `statistics.days` makes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

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
from mwallet.core.domain.statistics import Bucket
from mwallet.remote.reports import BadAnswer, minor, time_from


def window(first: str, last: str) -> tuple[Bucket, ...]:
    """The UTC days from `first` to `last`, both included."""
    try:
        start = datetime.strptime(first, "%Y-%m-%d").replace(tzinfo=UTC)
        end = datetime.strptime(last, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadAnswer(
            f"the server sent days this client cannot read: {first!r}, {last!r}"
        ) from None
    if end < start:
        raise BadAnswer(f"the server sent a window that ends before it starts: {first} to {last}")
    count = (end - start).days + 1
    return tuple(
        Bucket(f"{day:%Y-%m-%d}", day, day + timedelta(days=1))
        for day in (start + timedelta(days=index) for index in range(count))
    )


def volumes_from(found: Mapping[str, Any]) -> VolumeReport:
    """`render.reports.volumes_json`; the totals are the rows' sums, so they are not read."""
    return VolumeReport(
        window(found["from"], found["to"]),
        tuple(
            ProductDay(
                day=row["day"], product=row["product"], currency=row["currency"],
                count=int(row["count"]), volume=minor(row["volume"], row["currency"]),
                fees=minor(row["fees"], row["currency"]),
            )
            for row in found["rows"]
        ),
    )  # fmt: skip


def active_from(found: Mapping[str, Any]) -> ActiveUsers:
    return ActiveUsers(
        tuple(ActiveDay(one["day"], int(one["active_users"])) for one in found["days"]),
        int(found["active_in_window"]),
        int(found["wallets"]),
    )


def fees_from(found: Mapping[str, Any]) -> FeesReport:
    return FeesReport(volumes_from(found), _per_currency(found["fees_accounts"]))


def cash_from(found: Mapping[str, Any]) -> tuple[tuple[TerminalCash, ...], str, str]:
    """`render.reports.cash_json`: the terminals, and the window's first and last day."""

    def terminal(row: Mapping[str, Any]) -> TerminalCash:
        cur = row["currency"]
        cassettes = row["cassette_cash"]
        return TerminalCash(
            terminal_id=row["terminal_id"], kind=row["kind"], name=row["name"],
            agent_phone=row["agent_phone"], currency=row["currency"],
            paid_out_count=int(row["paid_out_count"]), paid_out=minor(row["paid_out"], cur),
            cash_in_count=int(row["cash_in_count"]), cash_in=minor(row["cash_in"], cur),
            account_balance=minor(row["account_balance"], cur),
            cassette_cash=None if cassettes is None else minor(cassettes, cur),
        )  # fmt: skip

    return tuple(map(terminal, found["terminals"])), str(found["from"]), str(found["to"])


def holds_from(found: Mapping[str, Any]) -> HoldsReport:
    """`render.reports.holds_json`; `matches` is worked out again from the sums."""
    return HoldsReport(
        tuple(
            OutstandingHold(
                kind=one["kind"], id=one["id"], phone=one["phone"],
                held=minor(one["held"], one["currency"]), currency=one["currency"],
                state=one["state"], created_at=time_from(one["created_at"]),
            )
            for one in found["holds"]
        ),
        int(found["count"]),
        _per_currency(found["held"]),
        _per_currency(found["holds_accounts"]),
    )  # fmt: skip


def trial_from(found: Mapping[str, Any]) -> TrialBalance:
    """`render.reports.trial_json`: the accounts, and what proving them from the postings
    found; the totals and `balanced` are worked out again from the accounts."""
    verified = found["verified"]
    return TrialBalance(
        accounts=tuple(
            AccountLine(
                code=line["code"], kind=line["kind"], currency=line["currency"],
                balance=minor(line["balance"], line["currency"]), status=line["status"],
            )
            for line in found["accounts"]
        ),
        verification=LedgerReport(
            accounts=int(verified["accounts"]), entries=int(verified["entries"]),
            postings=int(verified["postings"]), totals_by_currency=_per_currency(found["totals"]),
            problems=tuple(str(one) for one in found["problems"]),
            warnings=tuple(str(one) for one in found.get("warnings", ())),
        ),
        at=time_from(found["at"]),
    )  # fmt: skip


def _per_currency(found: Mapping[str, str]) -> dict[str, int]:
    return {str(cur): minor(text, cur) for cur, text in found.items()}
