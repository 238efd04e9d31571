"""Usage statistics and the operators' reports as JSON documents and CSV rows (the same strings in
both, so a sum over a CSV column gives back the document's totals exactly): `mwallet report …`,
`mwallet admin report …` and the reports service's `GET /reports/…`, `GET /admin/reports/…`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mwallet.render.values import money, when

if TYPE_CHECKING:
    from mwallet.core.domain.admin_reports import (
        ActiveUsers,
        FeesReport,
        HoldsReport,
        TerminalCash,
        TrialBalance,
        VolumeReport,
    )
    from mwallet.core.domain.statistics import Tally, UsageStats

__all__ = [
    "CASH_COLUMNS", "HOLD_COLUMNS", "TRIAL_COLUMNS", "VOLUME_COLUMNS", "active_json", "cash_json",
    "cash_row", "fees_json", "hold_rows", "holds_json", "money", "stats_json", "tally_json",
    "trends_json", "trial_json", "trial_rows", "volume_rows", "volumes_json",
]  # fmt: skip


def tally_json(tally: Tally, currency: str) -> dict[str, Any]:
    return {
        "count": tally.count,
        "amount": money(tally.amount, currency),
        "fees": money(tally.fees, currency),
        "average": money(tally.average, currency),
    }


def _header(stats: UsageStats) -> dict[str, Any]:
    return {
        "user": {"phone": stats.phone, "name": stats.name},
        "currency": stats.currency,
        "period": stats.period.value,
        "from": when(stats.start),
        "until": when(stats.end),  # exclusive
        "generated_at": when(stats.generated_at),
    }


def stats_json(stats: UsageStats) -> dict[str, Any]:
    from mwallet.core.domain.statistics import Flow

    cur = stats.currency
    return {
        **_header(stats),
        "balance": money(stats.balance.minor, cur),
        "in": {
            "total": tally_json(stats.total_in, cur),
            "categories": {c: tally_json(t, cur) for c, t in stats.totals(Flow.IN).items()},
        },
        "out": {
            "total": tally_json(stats.total_out, cur),
            "categories": {c: tally_json(t, cur) for c, t in stats.totals(Flow.OUT).items()},
        },
        "held": tally_json(stats.held, cur),
        "counterparties": [
            {
                "phone": one.phone,
                "name": one.name,
                "count": one.count,
                "sent": money(one.sent, cur),
                "received": money(one.received, cur),
            }
            for one in stats.counterparties
        ],
        "billers": [
            {
                "biller_id": one.biller_id,
                "name": one.name,
                "category": one.category,
                "count": one.count,
                "amount": money(one.amount, cur),
                "fees": money(one.fees, cur),
            }
            for one in stats.billers
        ],
    }


def trends_json(stats: UsageStats) -> dict[str, Any]:
    cur = stats.currency
    return {
        **_header(stats),
        "periods": [
            {
                "period": one.bucket.label,
                "in": tally_json(one.total_in, cur),
                "out": tally_json(one.total_out, cur),
                "held": tally_json(one.held, cur),
                "out_change_percent": change,
                "out_categories": {c: tally_json(t, cur) for c, t in sorted(one.money_out.items())},
                "in_categories": {c: tally_json(t, cur) for c, t in sorted(one.money_in.items())},
            }
            for one, change in zip(stats.periods, stats.changes(), strict=True)
        ],
    }


VOLUME_COLUMNS = ("day", "product", "currency", "count", "volume", "fees")


def volumes_json(report: VolumeReport) -> dict[str, Any]:
    return {
        "from": report.days[0].label,
        "to": report.days[-1].label,
        "rows": [
            {
                "day": row.day,
                "product": row.product,
                "currency": row.currency,
                "count": row.count,
                "volume": money(row.volume, row.currency),
                "fees": money(row.fees, row.currency),
            }
            for row in report.rows
        ],
        "totals": [
            {
                "product": product,
                "currency": cur,
                "count": count,
                "volume": money(volume, cur),
                "fees": money(fees, cur),
            }
            for (product, cur), (count, volume, fees) in sorted(report.totals().items())
        ],
    }


def volume_rows(report: VolumeReport) -> list[tuple[object, ...]]:
    return [
        (
            row.day,
            row.product,
            row.currency,
            row.count,
            money(row.volume, row.currency),
            money(row.fees, row.currency),
        )
        for row in report.rows
    ]


def active_json(report: ActiveUsers) -> dict[str, Any]:
    return {
        "from": report.days[0].day,
        "to": report.days[-1].day,
        "days": [{"day": one.day, "active_users": one.users} for one in report.days],
        "active_in_window": report.window,
        "wallets": report.registered,
    }


def fees_json(report: FeesReport) -> dict[str, Any]:
    volumes = volumes_json(report.volumes)
    return {
        "from": volumes["from"],
        "to": volumes["to"],
        "rows": volumes["rows"],  # the volume too: the table shows it
        "totals": volumes["totals"],
        "fees_accounts": {cur: money(total, cur) for cur, total in sorted(report.balances.items())},
    }


CASH_COLUMNS = (
    "terminal_id",
    "kind",
    "name",
    "agent_phone",
    "currency",
    "paid_out_count",
    "paid_out",
    "cash_in_count",
    "cash_in",
    "account_balance",
    "cassette_cash",
)


def cash_row(one: TerminalCash) -> tuple[object, ...]:
    cur = one.currency
    return (
        one.terminal_id,
        one.kind,
        one.name,
        one.agent_phone or "",
        one.currency,
        one.paid_out_count,
        money(one.paid_out, cur),
        one.cash_in_count,
        money(one.cash_in, cur),
        money(one.account_balance, cur),
        "" if one.cassette_cash is None else money(one.cassette_cash, cur),
    )


def cash_json(found: Sequence[TerminalCash], first: str, last: str) -> dict[str, Any]:
    rows = []
    for one in found:
        row = dict(zip(CASH_COLUMNS, cash_row(one), strict=True))
        row["agent_phone"] = one.agent_phone
        row["cassette_cash"] = row["cassette_cash"] or None
        rows.append(row)
    return {"from": first, "to": last, "terminals": rows}


HOLD_COLUMNS = ("kind", "id", "phone", "currency", "held", "state", "created_at")


def hold_rows(report: HoldsReport) -> list[tuple[object, ...]]:
    return [
        (
            one.kind,
            one.id,
            one.phone,
            one.currency,
            money(one.held, one.currency),
            one.state,
            when(one.created_at),
        )
        for one in report.holds
    ]


def holds_json(report: HoldsReport) -> dict[str, Any]:
    return {
        "holds": [dict(zip(HOLD_COLUMNS, row, strict=True)) for row in hold_rows(report)],
        "count": report.count,
        "held": {cur: money(total, cur) for cur, total in sorted(report.held.items())},
        "holds_accounts": {
            cur: money(total, cur) for cur, total in sorted(report.holds_accounts.items())
        },
        "matches": report.matches,
    }


TRIAL_COLUMNS = ("code", "kind", "currency", "status", "balance")


def trial_rows(report: TrialBalance) -> list[tuple[object, ...]]:
    return [
        (line.code, line.kind, line.currency, line.status, money(line.balance, line.currency))
        for line in report.accounts
    ]


def trial_json(report: TrialBalance) -> dict[str, Any]:
    return {
        "at": when(report.at),
        "accounts": [dict(zip(TRIAL_COLUMNS, row, strict=True)) for row in trial_rows(report)],
        "by_kind": [
            {"currency": cur, "kind": kind, "accounts": count, "balance": money(total, cur)}
            for (cur, kind), (count, total) in report.by_kind().items()
        ],
        "totals": {cur: money(total, cur) for cur, total in report.totals().items()},
        "balanced": report.balanced,
        "matches_postings": report.matches,
        "problems": list(report.verification.problems),
        "warnings": list(report.verification.warnings),
        "verified": {  # what the proof from the postings went through
            "accounts": report.verification.accounts,
            "entries": report.verification.entries,
            "postings": report.verification.postings,
        },
    }
