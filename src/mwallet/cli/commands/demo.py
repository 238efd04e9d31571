"""`mwallet demo`: the whole wallet at work on a fresh temporary database, start to finish."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mwallet.cli import output

if TYPE_CHECKING:
    from rich.console import Console

    from mwallet.core.domain.users import Principal
    from mwallet.core.services.wallet_service import WalletService

PEOPLE = (
    ("+258841000001", "Ana Machava", "ana@example.org"),
    ("+258842000002", "Bruno Tembe", None),
    ("+258843000003", "Carla Nhantumbo", "carla@example.org"),
)
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - a throwaway wallet's password, shown on screen


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's database and print where."),
) -> None:
    """Run the wallet end to end on a throwaway database (your own data is not touched)."""
    folder = Path(tempfile.mkdtemp(prefix="mwallet-demo-"))
    try:
        run_demo(folder)
    finally:
        if keep:
            output.console().print(f"\n[dim]The demo's database is kept in {folder}[/dim]")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def run_demo(folder: Path) -> None:
    from mwallet.bootstrap import build_wallet
    from mwallet.core.errors import WalletError
    from mwallet.locations import Paths, sqlite_url

    out = output.console()
    with build_wallet(sqlite_url(Paths(folder).database)) as wallet:
        service = wallet.service
        settings, _ = service.init(currency="USD")
        _step(
            out, f"A new wallet, books kept in {settings.currency} (SQLite, WAL, fsync on commit)"
        )

        _step(out, "Three people register (passwords hashed with argon2id) and log in")
        people: dict[str, Principal] = {}
        for phone, name, email in PEOPLE:
            service.register(
                phone=phone,
                display_name=name,
                email=email,
                password=DEMO_PASSWORD,
                idempotency_key=f"demo-register-{phone[1:]}",
            )
            people[name.split()[0]] = service.login(phone=phone, password=DEMO_PASSWORD).principal
            out.print(f"  registered {name} ({phone})")
        ana, bruno, carla = people["Ana"], people["Bruno"], people["Carla"]

        _step(out, "Ana tops up 150.00 from the sandbox funding source")
        output.print_topup(
            service.topup(
                ana,
                amount=service.parse_money("150"),
                source="sandbox",
                idempotency_key="demo-topup-1",
            )
        )

        _step(out, "Ana sends money; Bruno passes some on to Carla")
        first = service.transfer(
            ana,
            to_phone=bruno.phone,
            amount=service.parse_money("42.50"),
            note="rent share",
            idempotency_key="demo-send-1",
        )
        output.print_transfer(first)
        output.print_transfer(
            service.transfer(
                bruno,
                to_phone=carla.phone,
                amount=service.parse_money("12.25"),
                note="lunch",
                idempotency_key="demo-send-2",
            )
        )

        _step(out, "Ana's phone retries the first transfer with the same idempotency key")
        replay = service.transfer(
            ana,
            to_phone=bruno.phone,
            amount=service.parse_money("42.50"),
            note="rent share",
            idempotency_key="demo-send-1",
        )
        output.print_transfer(replay, replayed_note=" — the same transfer, no money moved again")

        _step(out, "Refusals change nothing")
        attempts = (
            (
                "Carla tries to send 500.00 (overdraft)",
                lambda: service.transfer(
                    carla,
                    to_phone=ana.phone,
                    amount=service.parse_money("500"),
                    note=None,
                    idempotency_key="demo-send-3",
                ),
            ),
            (
                "Bruno sends to himself",
                lambda: service.transfer(
                    bruno,
                    to_phone=bruno.phone,
                    amount=service.parse_money("1"),
                    note=None,
                    idempotency_key="demo-send-4",
                ),
            ),
            (
                "Ana sends to a number with no wallet",
                lambda: service.transfer(
                    ana,
                    to_phone="+258849999999",
                    amount=service.parse_money("1"),
                    note=None,
                    idempotency_key="demo-send-5",
                ),
            ),
            ("Ana types 10.999 (three decimals)", lambda: service.parse_money("10.999")),
            (
                "Ana reuses a key for another amount",
                lambda: service.transfer(
                    ana,
                    to_phone=bruno.phone,
                    amount=service.parse_money("1"),
                    note="rent share",
                    idempotency_key="demo-send-1",
                ),
            ),
        )
        for label, attempt in attempts:
            try:
                attempt()
            except WalletError as refusal:
                out.print(
                    f"  {label}: [red]refused[/red] — {refusal.message} [dim]({refusal.code})[/dim]"
                )
            else:  # pragma: no cover - each attempt above is refused by a rule
                raise AssertionError(f"the demo expected a refusal: {label}")

        _step(out, "Balances")
        _balances(out, service, people)

        _step(out, "Ana's history")
        output.print_history(service.history(ana, limit=10), title="Ana Machava")

        _step(out, "mwallet admin ledger verify")
        report = service.verify_ledger()
        output.print_report(report)
        if not report.ok:  # pragma: no cover - a sound demo ledger is what the test suite proves
            raise typer.Exit(7)


def _step(out: Console, title: str) -> None:
    out.print(f"\n[bold cyan]▸ {title}[/bold cyan]")


def _balances(out: Console, service: WalletService, people: dict[str, Principal]) -> None:
    from rich.table import Table

    table = Table(title_justify="left")
    table.add_column("Who")
    table.add_column("Phone")
    table.add_column("Balance", justify="right")
    for name, principal in people.items():
        table.add_row(name, principal.phone, service.balance(principal).balance.format())
    out.print(table)
