"""`mwallet report stats|trends` and `mwallet admin report …` through the real entry point
(SQLite; the operators' reports on PostgreSQL too), on the database and through a server
(`remote`), on the hand-computed history of `tests/integration/stats_history.py` played to end
today: the JSON documents and CSV tables give back the same totals, both doors print the same
bytes, the chart is drawn to a PNG, a customer cannot read others' numbers or the operators'
reports (9) while an auditor can, and bad input is one line and exit 2."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mwallet.cli.exit_codes import ExitCode
from mwallet.core.clock import FixedClock
from mwallet.core.domain.roles import Role
from tests.cli.harness import Cli
from tests.conftest import BACKENDS
from tests.integration.stats_history import History, build
from tests.support import open_wallet

USAGE = ExitCode.USAGE
FORBIDDEN = ExitCode.FORBIDDEN


@pytest.fixture
def history(db_url: str) -> History:
    """The history of `stats_history`, its last day today: all of it within the last four calendar
    months (sixty days back), whatever the date."""
    clock = FixedClock(datetime.now(UTC) - timedelta(days=60))
    with open_wallet(db_url, clock) as wallet:
        return build(wallet, clock)


def logged_in(cli: Cli, phone: str, name: str) -> Cli:
    person = Cli(home=cli.home.parent / name, db=cli.db, cwd=cli.cwd, extra_env=cli.extra_env)
    person.login(phone)
    return person


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def total(found: list[dict[str, Any]], column: str) -> Decimal:
    return sum((Decimal(row[column]) for row in found), Decimal(0))


@pytest.mark.remote
def test_stats_and_trends_as_json_and_text(cli: Cli, history: History, tmp_path: Path) -> None:
    ana = logged_in(cli, history.ana.phone, "ana")
    stats = ana.ok_json("report", "stats", "--months", "4")
    assert stats["user"] == {"phone": history.ana.phone, "name": "Ana Machava"}
    assert (stats["balance"], stats["currency"], stats["period"]) == ("317.00", "USD", "month")
    assert stats["in"]["total"] == {"count": 3, "amount": "535.00", "fees": "0.00",
                                    "average": "178.33"}  # fmt: skip
    assert stats["out"]["total"]["amount"] == "165.00"
    assert stats["out"]["total"]["fees"] == "0.50"
    assert stats["held"]["amount"] == "52.00"
    categories = stats["out"]["categories"]
    assert total(list(categories.values()), "amount") == Decimal("165.00")
    assert categories["withdrawal"] == {"count": 1, "amount": "60.00", "fees": "0.50",
                                        "average": "60.00"}  # fmt: skip
    assert [one["phone"] for one in stats["counterparties"]] == [
        history.bruno.phone,
        history.carla.phone,
    ]
    assert [one["biller_id"] for one in stats["billers"]] == ["aguas-maputo", "airtime-vodacom"]
    # A statement of all of it ends on the same balance; its lines add up to its totals.
    ever = ("statement", "--from", "2000-01-01", "--to", "2999-12-31")
    statement = ana.ok(*ever, "--format", "json").json()
    lines = statement["movements"]
    assert statement["closing_balance"] == stats["balance"]
    assert -sum(Decimal(one["amount"]) for one in lines if one["type"] == "fee") == Decimal(
        statement["total_fees"]
    ) == Decimal("1.50")  # fmt: skip
    assert Decimal(statement["total_in"]) - Decimal(statement["total_out"]) == Decimal("317.00")
    exported = rows(ana.ok(*ever).stdout)
    assert [row["type"] for row in exported[1:-3]] == [one["type"] for one in lines]
    assert exported[-1]["balance_after"] == "317.00"
    text = ana.ok("report", "stats", "--months", "4").stdout
    for word in ("Ana Machava", "withdrawal", "water", "airtime", "Bruno Tembe", "165.00 USD"):
        assert word in text

    picture = tmp_path / "trend.png"
    trends = ana.ok_json("report", "trends", "--months", "4", "--png", str(picture))
    assert trends["png"] == str(picture)
    outs = [one["out"] for one in trends["periods"]]
    assert total(outs, "amount") + total(outs, "fees") == Decimal("165.50")
    assert len(trends["periods"]) == 4
    assert trends["periods"][0]["out_change_percent"] is None
    with Image.open(picture) as image:
        assert image.format == "PNG"
        assert image.size == (900, 500)
        colours = image.convert("RGB").getcolors(maxcolors=100_000)
        assert colours is not None
        assert len(colours) > 10  # bars, legend and text, not a blank page
        assert (66, 133, 244) in {colour for _, colour in colours}  # the transfers' bars
    chart = ana.ok("report", "trends", "--months", "4", "--period", "week").stdout
    assert "week" in chart
    assert "█" in chart


@pytest.mark.remote
def test_reading_someone_elses_numbers(cli: Cli, history: History, door: str) -> None:
    admin = logged_in(cli, history.admin.phone, "admin")
    bruno = admin.ok_json("report", "stats", "--months", "4", "--user", history.bruno.phone)
    assert (bruno["user"]["name"], bruno["balance"]) == ("Bruno Tembe", "160.00")
    his_own = logged_in(cli, history.bruno.phone, "bruno")
    assert admin.ok("report", "trends", "--months", "4", "--user", history.bruno.phone).stdout == (
        his_own.ok("report", "trends", "--months", "4").stdout
    )
    assert admin.fails_json(ExitCode.NOT_FOUND, "report", "stats", "--user", "+258849999999") == {
        "error": "user_not_found", "message": "no user is registered to +258849999999",
    }  # fmt: skip
    ana = logged_in(cli, history.ana.phone, "ana")
    line = ana.fails(FORBIDDEN, "report", "stats", "--user", history.bruno.phone)
    # Refused in the same words at both doors (through the server, before any look-up).
    assert "a customer may not read another person's statistics" in line
    assert ana.ok_json("report", "trends", "--user", history.ana.phone)["user"]["name"] == (
        "Ana Machava"
    )
    assert "operators' reports" in ana.fails(FORBIDDEN, "admin", "report", "volumes")
    assert ana.fails_json(FORBIDDEN, "admin", "report", "trial-balance")["error"] == (
        "permission_denied"
    )


BAD_INPUT = [
    (("report", "stats", "--period", "year"), "'year' is not a period: use month or week"),
    (("report", "trends", "--months", "0"), "months must be between 1 and 36"),
    (("report", "stats", "--months", "37"), "months must be between 1 and 36"),
    (("report", "stats", "--months", "six"), "six"),
    (("admin", "report", "volumes", "--days", "0"), "days must be between 1 and 366"),
    (("admin", "report", "cash", "--days", "400"), "days must be between 1 and 366"),
    (("admin", "report", "holds", "--limit", "0"), "the limit must be between 1 and 1000"),
    (("admin", "report", "fees", "--json", "--csv"), "choose --json or --csv, not both"),
    (("report", "trends", "--png", "/no/such/folder/c.png"), "no folder /no/such/folder"),
]


@pytest.mark.remote
def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    admin = cli.as_admin(same_door=True)
    for args, message in BAD_INPUT:
        outcome = admin.run(*args)
        assert outcome.code == USAGE, (args, outcome.stderr)
        assert outcome.stdout == ""
        assert message in outcome.error_line(), args


# Each operators' report as a table, a JSON document and CSV.
OPERATORS_REPORTS = [
    (*report, *shown)
    for report in (("volumes", "--days", "90"), ("active", "--days", "90"),
                   ("fees", "--days", "90"), ("cash", "--days", "90"), ("holds",),
                   ("holds", "--limit", "1"), ("trial-balance",), ("trial-balance", "--by-kind"))
    for shown in ((), ("--json",), ("--csv",))
]  # fmt: skip
SECOND = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # a time in a document or a table's title


@pytest.mark.remote
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_operators_reports_json_and_csv_agree(
    cli: Cli, history: History, door: str, db_url: str
) -> None:
    admin = logged_in(cli, history.admin.phone, "admin")
    days = ("--days", "90")

    volumes = admin.ok_json("admin", "report", "volumes", *days)
    table = rows(admin.ok("admin", "report", "volumes", *days, "--csv").stdout)
    assert len(table) == len(volumes["rows"]) == 7
    by_product = {row["product"]: row for row in volumes["totals"]}
    assert (by_product["transfer"]["count"], by_product["transfer"]["volume"]) == (4, "80.00")
    assert total(table, "volume") == total(volumes["totals"], "volume") == Decimal("1000.00")
    assert total(table, "fees") == Decimal("0.50")
    assert "withdrawal" in admin.ok("admin", "report", "volumes", *days).stdout

    active = admin.ok_json("admin", "report", "active", *days)
    assert (active["active_in_window"], active["wallets"]) == (4, 5)
    active_rows = rows(admin.ok("admin", "report", "active", *days, "--csv").stdout)
    assert [int(row["active_users"]) for row in active_rows] == [
        one["active_users"] for one in active["days"]
    ]
    assert sum(int(row["active_users"]) for row in active_rows) == 4 + 2 + 2

    fees = admin.ok_json("admin", "report", "fees", *days)
    assert fees["fees_accounts"] == {"USD": "0.50"}
    fee_rows = rows(admin.ok("admin", "report", "fees", *days, "--csv").stdout)
    assert total(fee_rows, "fees") == total(fees["totals"], "fees") == Decimal("0.50")

    cash = admin.ok_json("admin", "report", "cash", *days)
    cash_rows = rows(admin.ok("admin", "report", "cash", *days, "--csv").stdout)
    assert total(cash_rows, "paid_out") == total(cash["terminals"], "paid_out") == Decimal("60")
    assert total(cash_rows, "cash_in") == total(cash["terminals"], "cash_in") == Decimal("30")
    agent = next(one for one in cash["terminals"] if one["kind"] == "agent")
    assert (agent["account_balance"], agent["cassette_cash"]) == ("170.00", None)
    assert "Agent Orange" in admin.ok("admin", "report", "cash", *days).stdout

    holds = admin.ok_json("admin", "report", "holds")
    hold_rows = rows(admin.ok("admin", "report", "holds", "--csv").stdout)
    assert [row["state"] for row in hold_rows] == ["pending", "unknown"]
    assert total(hold_rows, "held") == Decimal(holds["held"]["USD"]) == Decimal("52.50")
    assert (holds["count"], holds["holds_accounts"], holds["matches"]) == (
        2,
        {"USD": "52.50"},
        True,
    )
    assert "the holds accounts match" in admin.ok("admin", "report", "holds").stdout

    trial = admin.ok_json("admin", "report", "trial-balance")
    assert trial["totals"] == {"USD": "0.00"}
    assert (trial["balanced"], trial["matches_postings"]) == (True, True)
    trial_rows = rows(admin.ok("admin", "report", "trial-balance", "--csv").stdout)
    assert len(trial_rows) == len(trial["accounts"])
    assert total(trial_rows, "balance") == Decimal(0)
    assert {row["code"] for row in trial_rows} >= {"fees:USD", "holds:USD", "funding:sandbox:USD"}
    text = admin.ok("admin", "report", "trial-balance", "--by-kind").stdout
    assert "sum to 0.00 USD (zero)" in text
    assert "every balance matches its postings" in text

    # An auditor reads them too; through the server, the same bytes as on the database.
    with open_wallet(db_url) as wallet:
        wallet.service.set_role(actor=history.admin, phone=history.carla.phone, role=Role.AUDITOR)
    carla = logged_in(cli, history.carla.phone, "carla")
    assert carla.ok_json("admin", "report", "holds")["count"] == 2
    if door == "remote":
        here = Cli(home=cli.home.parent / "carla-local", db=db_url, cwd=cli.cwd)
        here.login(history.carla.phone)
        for args in OPERATORS_REPORTS:
            there_out = carla.ok("admin", "report", *args).stdout
            here_out = here.ok("admin", "report", *args).stdout
            if args[0] == "trial-balance":  # read when asked: the doors may be a second apart
                there_out, here_out = (re.sub(SECOND, "<at>", one) for one in (there_out, here_out))
            assert there_out == here_out, args


@pytest.mark.remote
def test_a_trial_balance_that_does_not_hold_exits_7(cli: Cli, history: History) -> None:
    from tests.cli.harness import tamper

    assert cli.db is not None
    tamper(cli.db, "UPDATE accounts SET balance = balance - 5 WHERE code = 'fees:USD'")
    admin = logged_in(cli, history.admin.phone, "admin")
    outcome = admin.run("admin", "report", "trial-balance", "--json")
    assert outcome.code == ExitCode.LEDGER_UNSOUND
    document = outcome.json()
    assert (document["balanced"], document["matches_postings"]) == (False, False)
    assert document["totals"] == {"USD": "-0.05"}
    assert any("fees:USD" in problem for problem in document["problems"])
