"""Usage statistics and operators' reports on SQLite and PostgreSQL, against the history of
`stats_history` (three months, every number worked out by hand there): money in, out and held per
month and category (a released withdrawal and a declined bill are not money out; a pending
withdrawal and an unknown bill are held), weeks, counterparties and billers, the change per month,
volumes and fees per product and day, active users, cash at terminals, outstanding holds, the trial
balance, and who may read what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.db.unit_of_work import SqlUnitOfWork
from mwallet.core.domain.admin_reports import ProductDay
from mwallet.core.domain.money import Money
from mwallet.core.domain.statistics import Flow, Period, Tally
from mwallet.core.domain.tariffs import Movement, flat
from mwallet.core.errors import InvalidInput, PermissionDenied, UserNotFound
from tests.cli.harness import tamper
from tests.integration.stats_history import History, auditor, build
from tests.support import register


@pytest.fixture
def history(wallet: Wallet, clock: FixedClock) -> History:
    return build(wallet, clock)


def test_a_persons_months_categories_counterparties_and_billers(
    wallet: Wallet, history: History
) -> None:
    stats = wallet.service.usage_statistics(history.ana, months=3)
    assert [one.bucket.label for one in stats.periods] == ["2026-01", "2026-02", "2026-03"]
    january, february, march = stats.periods
    assert january.money_in == {"topup": Tally(1, 50000), "received": Tally(1, 500)}
    assert january.money_out == {
        "transfer": Tally(2, 5000),
        "water": Tally(1, 2000),
        "withdrawal": Tally(1, 6000, 50),
    }
    assert january.held == Tally()
    # The cancelled withdrawal and the declined bill are neither out nor held.
    assert february.money_in == {}
    assert february.money_out == {"transfer": Tally(1, 2500), "airtime": Tally(1, 1000)}
    assert february.held == Tally()
    assert march.money_in == {"cash_in": Tally(1, 3000)}
    assert march.money_out == {}
    assert march.held == Tally(2, 4000 + 1200, 50)  # the pending withdrawal, the unknown bill

    assert stats.total_in == Tally(3, 53500)
    assert stats.total_out == Tally(6, 16500, 50)
    assert stats.total_out.average == 2750
    assert stats.totals(Flow.OUT)["transfer"] == Tally(3, 7500)
    assert stats.changes() == [None, -73.2, -100.0]  # 130.50 -> 35.00 -> 0
    # in - out - held = the balance: every movement counted once.
    balance = stats.total_in.gross - stats.total_out.gross - stats.held.gross
    assert balance == stats.balance.minor == 31700
    assert [(c.phone, c.count, c.sent, c.received) for c in stats.counterparties] == [
        (history.bruno.phone, 3, 6500, 500),
        (history.carla.phone, 1, 1000, 0),
    ]
    assert [(b.biller_id, b.category, b.count, b.amount) for b in stats.billers] == [
        ("aguas-maputo", "water", 1, 2000),
        ("airtime-vodacom", "airtime", 1, 1000),
    ]


def test_a_shorter_window_and_weeks(wallet: Wallet, history: History) -> None:
    last_two = wallet.service.usage_statistics(history.ana, months=2)
    assert [one.bucket.label for one in last_two.periods] == ["2026-02", "2026-03"]
    assert last_two.total_out == Tally(2, 3500)
    assert last_two.counterparties[0].sent == 2500

    weeks = wallet.service.usage_statistics(history.ana, months=3, period=Period.WEEK)
    assert weeks.periods[0].bucket.label == "2025-12-29"  # the Monday before January 1
    assert weeks.periods[-1].bucket.label == "2026-03-16"  # this week (the clock's Monday)
    busy = {one.bucket.label: one for one in weeks.periods if one.total_out.count}
    assert {label: one.total_out for label, one in busy.items()} == {
        "2026-01-12": Tally(4, 13000, 50),
        "2026-02-09": Tally(2, 3500),
    }
    assert weeks.total_out == Tally(6, 16500, 50)
    assert weeks.held == Tally(2, 5200, 50)

    # The agent: their float out for cash taken in.
    stats = wallet.service.usage_statistics(history.agent.principal, months=3)
    assert stats.totals(Flow.IN) == {"topup": Tally(1, 20000)}
    assert stats.totals(Flow.OUT) == {"cash_in_given": Tally(1, 3000)}


def test_a_transfers_fee_is_counted_apart_from_its_amount(wallet: Wallet, history: History) -> None:
    """A transfer's fee (the transfer tariff, paid by the sender on top) is money out with it,
    as a fee: its entry debits 10.25 from Ana, credits 10.00 to Carla and 0.25 to the fees."""
    service = wallet.service
    service.set_tariff(actor=history.admin, movement=Movement.TRANSFER, tariff=flat(25))
    service.transfer(history.ana, to_phone=history.carla.phone, amount=service.parse_money("10"),
                     note=None, idempotency_key="fee-1")  # fmt: skip
    stats = service.usage_statistics(history.ana, months=3)
    assert stats.periods[-1].money_out == {"transfer": Tally(1, 1000, 25)}
    assert stats.total_out == Tally(7, 17500, 75)  # the withdrawal's 0.50 and this 0.25
    balance = stats.total_in.gross - stats.total_out.gross - stats.held.gross
    assert balance == stats.balance.minor == 31700 - 1025
    assert [(c.phone, c.count, c.sent, c.received) for c in stats.counterparties] == [
        (history.bruno.phone, 3, 6500, 500),
        (history.carla.phone, 2, 2000, 0),  # the amounts sent, fees apart
    ]
    weeks = service.usage_statistics(history.ana, months=1, period=Period.WEEK)
    assert weeks.periods[-1].money_out == {"transfer": Tally(1, 1000, 25)}


def test_volumes_fees_and_active_users(wallet: Wallet, history: History) -> None:
    service = wallet.service
    report = service.volume_report(actor=history.admin, days=90)
    assert report.rows == (
        ProductDay("2026-01-15", "bill", "USD", 1, 2000, 0),
        ProductDay("2026-01-15", "topup", "USD", 3, 80000, 0),
        ProductDay("2026-01-15", "transfer", "USD", 3, 5500, 0),
        ProductDay("2026-01-15", "withdrawal", "USD", 1, 6000, 50),
        ProductDay("2026-02-14", "airtime", "USD", 1, 1000, 0),
        ProductDay("2026-02-14", "transfer", "USD", 1, 2500, 0),
        ProductDay("2026-03-16", "cash_in", "USD", 1, 3000, 0),
    )
    assert report.totals()[("transfer", "USD")] == (4, 8000, 0)
    # The last 31 days (today included) reach back to February 14; the last 30 do not.
    recent = service.volume_report(actor=history.admin, days=31)
    assert {row.day for row in recent.rows} == {"2026-02-14", "2026-03-16"}
    assert {row.day for row in service.volume_report(actor=history.admin, days=30).rows} == {
        "2026-03-16"
    }

    fees = service.fees_report(actor=history.admin, days=90)
    assert fees.volumes.rows == (ProductDay("2026-01-15", "withdrawal", "USD", 1, 6000, 50),)
    assert fees.balances == {"USD": 50}

    active = service.active_users_report(actor=history.admin, days=90)
    by_day = {one.day: one.users for one in active.days if one.users}
    # January: Ana, Bruno, Carla, the agent; February: Ana, Bruno; March: Ana, the agent.
    assert by_day == {"2026-01-15": 4, "2026-02-14": 2, "2026-03-16": 2}
    assert len(active.days) == 90
    assert (active.window, active.registered) == (4, 5)


def test_cash_at_terminals(wallet: Wallet, history: History) -> None:
    found, first, last = wallet.service.cash_report(actor=history.admin, days=90)
    assert (first, last) == ("2025-12-17", "2026-03-16")
    agent, atm = sorted(found, key=lambda one: one.kind)
    assert (atm.terminal_id, atm.paid_out_count, atm.paid_out) == (history.atm.id, 1, 6000)
    assert (atm.account_balance, atm.cassette_cash) == (6000, 70000 - 6000)
    assert (agent.terminal_id, agent.cash_in_count, agent.cash_in) == (history.agent.id, 1, 3000)
    assert (agent.account_balance, agent.cassette_cash, agent.paid_out) == (17000, None, 0)
    today, _, _ = wallet.service.cash_report(actor=history.admin, days=1)
    assert [(one.paid_out, one.cash_in) for one in sorted(today, key=lambda o: o.kind)] == [
        (0, 3000),
        (0, 0),
    ]


def test_outstanding_holds_are_what_the_holds_account_holds(
    wallet: Wallet, history: History, clock: FixedClock
) -> None:
    service = wallet.service
    report = service.holds_report(actor=history.admin)
    assert [(h.kind, h.state, h.held, h.phone) for h in report.holds] == [
        ("withdrawal", "pending", 4050, history.ana.phone),
        ("bill", "unknown", 1200, history.ana.phone),
    ]
    assert (report.count, report.held, report.holds_accounts) == (2, {"USD": 5250}, {"USD": 5250})
    assert report.matches
    assert len(service.holds_report(actor=history.admin, limit=1).holds) == 1
    # The withdrawal expires: its hold comes back, and is neither held nor out any more.
    clock.advance(timedelta(hours=1))
    assert service.expire_withdrawals(actor=history.admin) == 1
    after = service.holds_report(actor=history.admin)
    assert (after.count, after.held, after.matches) == (1, {"USD": 1200}, True)
    stats = service.usage_statistics(history.ana, months=3)
    assert stats.held == Tally(1, 1200)
    assert stats.total_out == Tally(6, 16500, 50)


def test_the_trial_balance(wallet: Wallet, history: History, db_url: str) -> None:
    report = wallet.service.trial_balance(actor=history.admin)
    assert report.totals() == {"USD": 0}
    assert (report.balanced, report.matches) == (True, True)
    kinds = report.by_kind()
    assert kinds[("USD", "wallet")][1] == 31700 + 16000 + 1000 + 17000  # Ana, Bruno, Carla, agent
    assert kinds[("USD", "funding")] == (2, -80000)
    assert kinds[("USD", "hold")] == (1, 5250)
    assert kinds[("USD", "fees")] == (1, 50)
    assert sum(line.balance for line in report.accounts) == 0
    # A balance changed behind the ledger's back: the books no longer match their postings.
    tamper(db_url, "UPDATE accounts SET balance = balance + 1 WHERE code = 'fees:USD'")
    broken = wallet.service.trial_balance(actor=history.admin)
    assert (broken.balanced, broken.matches) == (False, False)
    assert broken.totals() == {"USD": 1}
    assert any("fees:USD" in problem for problem in broken.verification.problems)


def test_who_may_read_what(wallet: Wallet, history: History) -> None:
    service = wallet.service
    ana, bruno = history.ana, history.bruno
    # A customer reads their own, by number too, but nobody else's, and no operators' report.
    assert service.usage_statistics(ana, phone=ana.phone, months=1).phone == ana.phone
    with pytest.raises(PermissionDenied):
        service.usage_statistics(ana, phone=bruno.phone)
    for report in (service.volume_report, service.active_users_report, service.fees_report,
                   service.cash_report):  # fmt: skip
        with pytest.raises(PermissionDenied):
            report(actor=ana, days=1)
    with pytest.raises(PermissionDenied):
        service.holds_report(actor=ana)
    with pytest.raises(PermissionDenied):
        service.trial_balance(actor=history.agent.principal)
    # An auditor and an admin read anyone's, and every report.
    audrey = auditor(wallet, history.admin)
    theirs = service.usage_statistics(audrey, phone=bruno.phone, months=3)
    assert (theirs.name, theirs.total_in) == ("Bruno Tembe", Tally(3, 16500))
    assert service.usage_statistics(history.admin, phone=bruno.phone, months=3) == theirs
    assert service.trial_balance(actor=audrey).matches
    assert service.volume_report(actor=audrey, days=1).rows
    with pytest.raises(UserNotFound):
        service.usage_statistics(audrey, phone="+258841239999")


def test_bad_windows_are_refused(wallet: Wallet, history: History) -> None:
    service = wallet.service
    for months in (0, 37):
        with pytest.raises(InvalidInput, match="months must be between 1 and 36"):
            service.usage_statistics(history.ana, months=months)
    for days in (0, 367):
        with pytest.raises(InvalidInput, match="days must be between 1 and 366"):
            service.volume_report(actor=history.admin, days=days)
    with pytest.raises(InvalidInput):
        service.holds_report(actor=history.admin, limit=0)


def test_the_reports_window_edges_to_the_microsecond(wallet: Wallet, clock: FixedClock) -> None:
    """Entries found by a range of their ids (made in their millisecond), trimmed by their times:
    one a microsecond before the window and one at its end are out; one at its start and one a
    microsecond before its end are in, in any time zone the window is given in."""
    ana = register(wallet.service)
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    end = start + timedelta(days=1)
    tick = timedelta(microseconds=1)
    for number, at in enumerate([start - tick, start, end - tick, end, start + 999 * tick]):
        clock.advance(at - clock.now())
        wallet.service.topup(
            ana, amount=Money(100 + number, "USD"), source="sandbox", idempotency_key=f"e{number}"
        )
    moscow = timezone(timedelta(hours=3))
    for window in [(start, end), (start.astimezone(moscow), end.astimezone(moscow))]:
        with SqlUnitOfWork(wallet.engine).read_only() as uow:
            rows = uow.stats.volumes(*window)
        assert [(kind, count, volume) for _, kind, _, _, count, volume, _ in rows] == [
            ("topup", 3, 101 + 102 + 104)
        ]
