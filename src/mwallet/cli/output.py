"""Rendering for people (Rich) and for scripts (one JSON document on stdout).

Amounts always leave as decimal strings, never JSON numbers, so no reader turns them into floats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mwallet.render.values import when

if TYPE_CHECKING:
    from rich.console import Console

    from mwallet.core.domain.audit import AuditRecord, ChainReport
    from mwallet.core.domain.clients import OAuthClient
    from mwallet.core.domain.ledger import LedgerReport
    from mwallet.core.domain.money import Money
    from mwallet.core.domain.notifications import Delivery
    from mwallet.core.domain.payments import Biller, Payment
    from mwallet.core.domain.terminals import Terminal
    from mwallet.core.domain.transfers import TopUp, Transfer
    from mwallet.core.domain.users import User
    from mwallet.core.domain.withdrawals import Withdrawal, WithdrawalPolicy
    from mwallet.core.services.history import MovementPage
    from mwallet.core.services.notifications import NotifyStats
    from mwallet.core.services.wallets import Balance
    from mwallet.core.services.withdrawals import IssuedWithdrawal


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def emit_json(document: object) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))


def amount(money: Money) -> str:
    return money.to_decimal_string()


def client_json(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "name": client.name,
        "kind": client.kind.value,
        "scopes": sorted(client.scopes),
        "created_at": when(client.created_at),
        "disabled_at": when(client.disabled_at) if client.disabled_at else None,
    }


def balance_json(balance: Balance) -> dict[str, Any]:
    return {
        "user_id": balance.user_id,
        "phone": balance.phone,
        "currency": balance.balance.currency,
        "balance": amount(balance.balance),
        "available": amount(balance.available),
    }


def transfer_json(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "from": transfer.sender_phone,
        "to": transfer.recipient_phone,
        "amount": amount(transfer.amount),
        "fee": amount(transfer.fee),
        "currency": transfer.amount.currency,
        "note": transfer.note,
        "created_at": when(transfer.created_at),
    }


def topup_json(topup: TopUp) -> dict[str, Any]:
    return {
        "id": topup.id,
        "source": topup.source,
        "amount": amount(topup.amount),
        "currency": topup.amount.currency,
        "created_at": when(topup.created_at),
    }


def report_json(report: LedgerReport) -> dict[str, Any]:
    from mwallet.core.domain.money import Money

    return {
        "ok": report.ok,
        "accounts": report.accounts,
        "entries": report.entries,
        "postings": report.postings,
        "totals_by_currency": {
            currency: Money(total, currency).to_decimal_string()
            for currency, total in report.totals_by_currency.items()
        },
        "problems": list(report.problems),
        "warnings": list(report.warnings),
    }


def print_balance(balance: Balance, out: Console | None = None) -> None:
    from rich.table import Table

    table = Table(title=f"Wallet of {balance.phone}", title_justify="left")
    table.add_column("Balance", justify="right")
    table.add_column("Available", justify="right")
    table.add_row(balance.balance.format(), balance.available.format())
    (out or console()).print(table)


def print_transfer(
    transfer: Transfer, out: Console | None = None, *, replayed_note: str = ""
) -> None:
    note = f" — “{transfer.note}”" if transfer.note else ""
    fee = f" (fee {transfer.fee.format()})" if transfer.fee_minor else ""
    (out or console()).print(
        f"[green]Sent[/green] {transfer.amount.format()} to {transfer.recipient_phone}{fee}{note}"
        f"  [dim]id {transfer.id}{replayed_note}[/dim]"
    )


def print_topup(topup: TopUp, out: Console | None = None) -> None:
    (out or console()).print(
        f"[green]Topped up[/green] {topup.amount.format()} from {topup.source}"
        f"  [dim]id {topup.id}[/dim]"
    )


def print_movements(page: MovementPage, out: Console | None = None) -> None:
    from rich.table import Table

    out = out or console()
    if not page.movements:
        out.print("No movements yet." if page.next_cursor is None else "No more movements.")
        return
    table = Table(title=f"{page.owner.display_name} ({page.owner.phone})", title_justify="left")
    table.add_column("When (UTC)", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Counterparty", no_wrap=True)
    table.add_column("Amount", justify="right", no_wrap=True)
    table.add_column("Balance", justify="right", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Note", overflow="fold")
    for line in page.movements:
        colour = "green" if line.amount.minor > 0 else "red"
        table.add_row(
            line.created_at.strftime("%Y-%m-%d %H:%M"),
            line.type.value.replace("_", " "),
            line.counterparty or "",
            f"[{colour}]{line.amount.format()}[/{colour}]",
            line.balance_after.format(),
            line.state,
            line.note or "",
        )
    out.print(table)
    if page.next_cursor is not None:
        out.print(f"[dim]More: mwallet history --cursor {page.next_cursor}[/dim]")


def print_report(report: LedgerReport, out: Console | None = None) -> None:
    from rich.table import Table

    out = out or console()
    table = Table(title="Ledger", title_justify="left")
    table.add_column("Accounts", justify="right")
    table.add_column("Entries", justify="right")
    table.add_column("Postings", justify="right")
    table.add_column("Sum per currency")
    from mwallet.core.domain.money import Money

    sums = (
        ", ".join(Money(t, c).format() for c, t in sorted(report.totals_by_currency.items())) or "—"
    )
    table.add_row(str(report.accounts), str(report.entries), str(report.postings), sums)
    out.print(table)
    if report.ok:
        out.print(
            "[green]✔ The ledger is sound:[/green] every entry balances, every balance equals "
            "its postings, no wallet is negative."
        )
    else:
        out.print(f"[red]✘ The ledger has {len(report.problems)} problem(s):[/red]")
        for problem in report.problems:
            out.print(f"  - {problem}")
    for warning in report.warnings:
        out.print(f"[yellow]! {warning}[/yellow]")


def audit_json(records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    return [
        {
            "seq": record.seq,
            "at": when(record.at),
            "action": record.action,
            "actor": record.actor,
            "subject": record.subject,
            "details": dict(record.details),
            "hash": record.hash,
        }
        for record in records
    ]


def print_audit(records: Sequence[AuditRecord], out: Console | None = None) -> None:
    from rich.table import Table

    if not records:
        (out or console()).print("The audit log is empty.")
        return
    table = Table(title="Audit log (newest first)", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("When (UTC)", no_wrap=True)
    table.add_column("Action", no_wrap=True)
    table.add_column("Actor", max_width=8, no_wrap=True)
    table.add_column("Subject", no_wrap=True)
    table.add_column("Details", overflow="fold")
    for record in records:
        details = ", ".join(f"{k}={v}" for k, v in sorted(record.details.items()))
        table.add_row(
            str(record.seq),
            record.at.strftime("%m-%d %H:%M:%S"),
            record.action,
            record.actor or "—",
            record.subject or "",
            details,
        )
    (out or console()).print(table)


def print_audit_report(
    report: ChainReport, out: Console | None = None, *, anchored_at: int | None = None
) -> None:
    out = out or console()
    if report.ok:
        anchor = (
            f"; it still passes through record {anchored_at}, seen by an earlier verify"
            if anchored_at is not None
            else ""
        )
        out.print(
            f"[green]✔ The audit log is intact:[/green] {report.records} record(s), "
            f"every hash follows from the one before{anchor}."
        )
    else:
        out.print(f"[red]✘ The audit log is broken:[/red] {report.problem}")


def print_users(users: Sequence[User], out: Console | None = None) -> None:
    from rich.table import Table

    if not users:
        (out or console()).print("No users.")
        return
    table = Table(title_justify="left")
    table.add_column("Phone", no_wrap=True)
    table.add_column("Name")
    table.add_column("Role", no_wrap=True)
    table.add_column("Tier", no_wrap=True)
    table.add_column("E-mail")
    table.add_column("Since (UTC)", no_wrap=True)
    for user in users:
        table.add_row(
            user.phone,
            user.display_name,
            user.role.value,
            user.tier.value,
            user.email or "",
            user.created_at.strftime("%Y-%m-%d"),
        )
    (out or console()).print(table)


def policy_json(policy: WithdrawalPolicy, currency: str) -> dict[str, Any]:
    from mwallet.core.domain.money import Money

    return {
        "currency": currency,
        "min": amount(Money(policy.min_minor, currency)),
        "max": amount(Money(policy.max_minor, currency)),
        "expiry_minutes": int(policy.lifetime.total_seconds() // 60),
    }


def print_policy(shown: dict[str, Any], currency: str) -> None:
    out = console()
    out.print(f"Withdrawals: {shown['min']} to {shown['max']} {currency} each")
    out.print(f"Codes are valid {shown['expiry_minutes']} minutes")
    out.print("Fees: mwallet admin tariffs; daily and monthly limits: mwallet admin limits list")


def withdrawal_json(withdrawal: Withdrawal) -> dict[str, Any]:
    return {
        "id": withdrawal.id,
        "amount": amount(withdrawal.amount),
        "fee": amount(withdrawal.fee),
        "currency": withdrawal.amount.currency,
        "channel": withdrawal.channel.value,
        "state": withdrawal.state.value,
        "created_at": when(withdrawal.created_at),
        "expires_at": when(withdrawal.expires_at),
        "terminal_id": withdrawal.terminal_id,
    }


def print_issued_withdrawal(issued: IssuedWithdrawal, *, show_qr: bool) -> None:
    from mwallet.core.domain.withdrawals import format_code

    out = console()
    found = issued.withdrawal
    if issued.code is None:
        out.print(
            f"Withdrawal {found.id} ({found.amount.format()}) was already made by this request; "
            "its code was shown then. Lost it? Cancel it and ask again."
        )
        return
    where = "an ATM" if found.channel.value == "atm" else "an agent"
    fee = f" (fee {found.fee.format()}, held with it)" if found.fee.minor else ""
    out.print(f"[green]Ready[/green]: take {found.amount.format()} in cash at {where}{fee}.")
    out.print(f"  code [bold]{format_code(issued.code)}[/bold]   PIN [bold]{issued.pin}[/bold]")
    out.print(f"  valid until {when(found.expires_at)}  [dim]id {found.id}[/dim]")
    if show_qr and issued.qr_payload is not None:
        import sys

        import segno

        segno.make(issued.qr_payload, error="m").terminal(out=sys.stdout, compact=True)


def print_withdrawals(found: Sequence[Withdrawal], out: Console | None = None) -> None:
    from rich.table import Table

    table = Table("Id", "Amount", "Fee", "At", "State", "Expires (UTC)", title_justify="left")
    for one in found:
        table.add_row(one.id, one.amount.format(), one.fee.format() if one.fee.minor else "-",
                      one.channel.value, one.state.value, when(one.expires_at))  # fmt: skip
    (out or console()).print(table)


def cassettes_json(notes: dict[int, int], currency: str) -> list[dict[str, Any]]:
    from mwallet.core.domain.money import Money

    return [
        {"denomination": amount(Money(denomination, currency)), "notes": count}
        for denomination, count in sorted(notes.items(), reverse=True)
    ]


def cassette_line(notes: dict[int, int], currency: str) -> list[str]:
    from mwallet.core.domain.money import Money

    return [
        f"{count} x {Money(denomination, currency).format()}"
        for denomination, count in sorted(notes.items(), reverse=True)
    ]


def terminal_json(
    terminal: Terminal, notes: dict[int, int], currency: str, now: datetime
) -> dict[str, Any]:
    return {
        "terminal_id": terminal.id,
        "kind": terminal.kind.value,
        "name": terminal.name,
        "client_id": terminal.client_id,
        "agent_user_id": terminal.agent_user_id,
        "locked_until": _lock_end(terminal, now),
        "cassettes": cassettes_json(notes, currency),
    }


def print_terminals(
    found: Sequence[tuple[Terminal, dict[int, int]]], currency: str, now: datetime
) -> None:
    from rich.table import Table

    table = Table("Terminal", "Kind", "Name", "Cassettes", "State")
    for terminal, notes in found:
        cassettes = ", ".join(cassette_line(notes, currency))
        lock_end = _lock_end(terminal, now)
        state = f"locked until {lock_end}" if lock_end else ""
        table.add_row(terminal.id, terminal.kind.value, terminal.name, cassettes or "-",
                      state or "ready")  # fmt: skip
    console().print(table)


def _lock_end(terminal: Terminal, now: datetime) -> str | None:
    """When a terminal's current lock ends; None when it is not locked now."""
    if terminal.locked_until is None or not terminal.locked_at(now):
        return None
    return when(terminal.locked_until)


# --- notifications -------------------------------------------------------------------------------
def notification_json(found: Delivery) -> dict[str, Any]:
    return {
        "id": found.id,
        "event_id": found.event_id,
        "channel": found.channel.value,
        "kind": found.kind,
        "to": found.address,
        "title": found.title,
        "body": found.body,
        "state": found.state.value,
        "attempts": found.attempts,
        "created_at": when(found.created_at),
        "sent_at": when(found.sent_at) if found.sent_at else None,
        "read_at": when(found.read_at) if found.read_at else None,
        "last_error": found.last_error,
    }


def print_inbox(found: Sequence[Delivery]) -> None:
    from rich.table import Table

    if not found:
        console().print("Your inbox is empty.")
        return
    table = Table("", "When (UTC)", "Title", "Message", title_justify="left")
    table.add_column("Id", no_wrap=True, min_width=26)
    for one in found:
        table.add_row("" if one.read_at else "•", one.created_at.strftime("%Y-%m-%d %H:%M"),
                      one.title, one.body, one.id)  # fmt: skip
    console().print(table)


def notify_stats_json(found: NotifyStats) -> dict[str, Any]:
    def seconds(age: timedelta | None) -> float | None:
        return None if age is None else round(age.total_seconds(), 3)

    return {
        "channels": {
            stat.channel.value: {
                **{state.value: count for state, count in stat.counts.items()},
                "oldest_pending_age_s": seconds(stat.oldest_pending_age),
            }
            for stat in found.channels
        },
        "outbox": {
            "backlog": found.outbox_backlog,
            "oldest_age_s": seconds(found.outbox_oldest_age),
        },
    }


def print_notify_stats(document: dict[str, Any]) -> None:
    from rich.table import Table

    states = ("queued", "sending", "retrying", "sent", "dead")
    table = Table("Channel", *states, "Oldest waiting (s)", title_justify="left")
    for channel, counts in document["channels"].items():
        oldest = counts["oldest_pending_age_s"]
        table.add_row(channel, *(str(counts[state]) for state in states),
                      "-" if oldest is None else f"{oldest:.0f}")  # fmt: skip
    out = console()
    out.print(table)
    outbox = document["outbox"]
    age = outbox["oldest_age_s"]
    out.print(f"Outbox: {outbox['backlog']} event(s) to relay"
              + ("" if age is None else f", the oldest {age:.0f} s old"))  # fmt: skip


def print_dead_letters(found: Sequence[Delivery]) -> None:
    from rich.table import Table

    if not found:
        console().print("No dead letters.")
        return
    table = Table("Id", "Channel", "To", "Attempts", "Last error", title_justify="left")
    for one in found:
        table.add_row(one.id, one.channel.value, one.address, str(one.attempts),
                      one.last_error or "")  # fmt: skip
    console().print(table)


# --- payments ------------------------------------------------------------------------------------
def print_billers(found: Sequence[Biller]) -> None:
    from rich.table import Table

    from mwallet.core.domain.money import Money

    table = Table("Id", "Name", "Category", "Amounts", "Reference", title_justify="left")
    for one in found:
        low, high = Money(one.min_minor, one.currency), Money(one.max_minor, one.currency)
        check = "" if one.check.value == "none" else f" ({one.check.value} check digit)"
        table.add_row(one.id, one.name, one.category.value, f"{low.format()} - {high.format()}",
                      f"{one.pattern}{check}")  # fmt: skip
    console().print(table)


def payment_json(found: Payment) -> dict[str, Any]:
    return {
        "id": found.id,
        "product": found.product.value,
        "biller_id": found.biller_id,
        "reference": found.reference,
        "amount": amount(found.amount),
        "fee": amount(found.fee),
        "currency": found.amount.currency,
        "state": found.state.value,
        "provider_ref": found.provider_ref,
        "reason": found.reason,
        "created_at": when(found.created_at),
        "updated_at": when(found.updated_at),
    }


def print_payment(found: Payment, biller: Biller | None = None) -> None:
    out = console()
    name = biller.name if biller is not None else found.biller_id
    color = {"succeeded": "green", "failed": "red"}.get(found.state.value, "yellow")
    topup = found.product.value == "topup"
    direction = "from" if topup else "to"
    out.print(f"[{color}]{found.state.value.capitalize()}[/{color}]: {found.amount.format()} "
              f"{direction} {name}, reference {found.reference}")  # fmt: skip
    if found.state.value == "succeeded":
        out.print(f"  receipt {found.provider_ref}  [dim]id {found.id}[/dim]")
    elif found.state.value == "unknown" and topup:
        out.print("  the provider has not answered: nothing is credited until it approves "
                  f"(then once)  [dim]id {found.id}[/dim]")  # fmt: skip
    elif found.state.value == "unknown":
        out.print("  the provider has not answered: the money is held, and will be charged or "
                  f"returned once it does  [dim]id {found.id}[/dim]")  # fmt: skip
    else:
        out.print(f"  [dim]id {found.id}[/dim]" + (f"  {found.reason}" if found.reason else ""))


def print_payments(found: Sequence[Payment]) -> None:
    from rich.table import Table

    table = Table("When (UTC)", "Biller", "Reference", "Amount", "State", title_justify="left")
    table.add_column("Id", no_wrap=True, min_width=26)
    for one in found:
        table.add_row(one.created_at.strftime("%Y-%m-%d %H:%M"), one.biller_id, one.reference,
                      one.amount.format(), one.state.value, one.id)  # fmt: skip
    console().print(table)
