"""The reports service over HTTP, on both databases, against `stats_history` (three months of Ana's
money, every number worked out by hand there): her movements page by page with filters, as JSON
and CSV; a statement of February (a cancelled withdrawal with its fee, a declined bill, both
reversed); her statistics and trends; the operators' reports; who may read what; and bad query
parameters, each a 4xx problem. Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.users import Principal
from mwallet.server.openapi import document
from tests.conftest import BACKENDS, _template
from tests.integration.http_support import conformance, conformant_client, is_problem
from tests.integration.stats_history import History, auditor, build
from tests.support import PASSWORD, START, Template, open_wallet

# Ana's 18 lines, newest first: (type, amount, balance after, state). January: top-up 500, 40 and
# 10 sent, 5 received, water 20, 60 withdrawn at the ATM with a 0.50 fee; February: 20 asked for
# and cancelled (its fee line, then 20.50 back), a 15 bill declined (15 back), 25 sent, 10 of
# airtime; March: 40 asked for (pending, 0.50 fee), a 12 bill unknown, 30 cash in.
ANA = [
    ("cash_in", "30.00", "317.00", "completed"),
    ("bill", "-12.00", "287.00", "unknown"),
    ("fee", "-0.50", "299.00", "pending"),
    ("withdrawal", "-40.00", "299.50", "pending"),
    ("airtime", "-10.00", "339.50", "succeeded"),
    ("transfer_out", "-25.00", "349.50", "completed"),
    ("reversal", "15.00", "374.50", "failed"),
    ("bill", "-15.00", "359.50", "failed"),
    ("reversal", "20.50", "374.50", "cancelled"),
    ("fee", "-0.50", "354.00", "cancelled"),
    ("withdrawal", "-20.00", "354.50", "cancelled"),
    ("fee", "-0.50", "374.50", "completed"),
    ("withdrawal", "-60.00", "375.00", "completed"),
    ("bill", "-20.00", "435.00", "succeeded"),
    ("transfer_in", "5.00", "455.00", "completed"),
    ("transfer_out", "-10.00", "450.00", "completed"),
    ("transfer_out", "-40.00", "460.00", "completed"),
    ("topup", "500.00", "500.00", "completed"),
]


@dataclass(frozen=True)
class Books:
    """One history per database, read by every test of this module (reports write nothing)."""

    client: TestClient
    wallet: Wallet
    history: History
    auditor: Principal
    auth: dict[str, dict[str, str]]  # Bearer headers by name


@pytest.fixture(scope="module", params=BACKENDS)
def books(
    request: pytest.FixtureRequest,
    templates: dict[str, Template],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Books]:
    template = _template(request.param, templates, tmp_path_factory.mktemp("template"))
    with template.fresh_copy(tmp_path_factory.mktemp("reports")) as url:
        clock = FixedClock(START)
        wallet = open_wallet(url, clock)
        try:
            history = build(wallet, clock)
            audrey = auditor(wallet, history.admin)
            people = {"ana": history.ana, "bruno": history.bruno, "admin": history.admin,
                      "audrey": audrey}  # fmt: skip
            auth = {name: bearer(wallet, who) for name, who in people.items()}
            with conformant_client(wallet) as client:
                yield Books(client, wallet, history, audrey, auth)
        finally:
            wallet.close()


def bearer(wallet: Wallet, who: Principal) -> dict[str, str]:
    tokens = wallet.service.login(phone=who.phone, password=PASSWORD).tokens
    return {"Authorization": f"Bearer {tokens.access_token}"}


def lines(page: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(m["type"], m["amount"], m["balance_after"], m["state"]) for m in page["movements"]]


def test_movements_page_by_page_with_filters_as_json_and_csv(books: Books) -> None:
    client, history, ana = books.client, books.history, books.auth["ana"]
    url = f"/reports/transactions/{history.ana.user_id}"
    whole = client.get(url, headers=ana, params={"limit": 50})
    assert whole.status_code == 200, whole.text
    assert whole.json()["user"] == history.ana.phone
    assert lines(whole.json()) == ANA
    assert whole.json()["next_cursor"] is None

    # Pages of 5 by cursor: 5 + 5 + 5 + 3, none skipped or repeated.
    seen: list[dict[str, Any]] = []
    cursor = None
    sizes = []
    while True:
        page = client.get(url, headers=ana, params={"limit": 5, **({"cursor": cursor} if cursor
                                                                   else {})}).json()  # fmt: skip
        seen += page["movements"]
        sizes.append(len(page["movements"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [5, 5, 5, 3]
    assert seen == whole.json()["movements"]

    def only(**params: Any) -> list[tuple[str, str, str, str]]:
        found = client.get(url, headers=ana, params={"limit": 50, **params})
        assert found.status_code == 200, found.text
        return lines(found.json())

    assert only(type="fee") == [ANA[2], ANA[9], ANA[11]]
    assert only(type=["reversal", "transfer_in"]) == [ANA[6], ANA[8], ANA[14]]
    assert only(type="reversal,transfer_in") == [ANA[6], ANA[8], ANA[14]]
    assert only(**{"from": "2026-03-16", "to": "2026-03-16"}) == ANA[:4]
    assert only(**{"from": "2026-02-01", "to": "2026-02-28"}) == ANA[4:11]
    assert only(counterparty=history.bruno.phone) == [ANA[5], ANA[14], ANA[16]]
    # Sizes from 20 to 40 (the amount, sign apart), both included.
    assert only(min="20", max="40") == [ANA[i] for i in (0, 3, 5, 8, 10, 13, 16)]

    # CSV: the same lines, oldest last; the next page's cursor in a header.
    as_csv = client.get(url, headers={**ana, "Accept": "text/csv"}, params={"limit": 4})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["type"], r["amount"], r["balance_after"], r["state"]) for r in rows] == ANA[:4]
    by_format = client.get(url, headers=ana, params={"limit": 4, "format": "csv"})
    assert by_format.text == as_csv.text
    assert (
        as_csv.headers["x-next-cursor"]
        == client.get(url, headers=ana, params={"limit": 4}).json()["next_cursor"]
    )


def test_a_statement_leads_from_its_opening_to_the_ledgers_closing_balance(books: Books) -> None:
    client, history, ana = books.client, books.history, books.auth["ana"]
    url = f"/reports/statement/{history.ana.user_id}"
    february = client.get(url, headers=ana, params={"from": "2026-02-01", "to": "2026-02-28"})
    assert february.status_code == 200, february.text
    found = february.json()
    # Opening: 500 - 40 - 10 + 5 - 20 - 60.50 = 374.50. In: 20.50 + 15 back; out: 20 + 0.50 +
    # 15 + 25 + 10; closing 374.50 + 35.50 - 70.50 = 339.50.
    assert (found["from"], found["to"]) == ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
    assert found["opening_balance"] == "374.50"
    assert [(m["type"], m["amount"]) for m in found["movements"]] == [
        (t, a) for t, a, _, _ in reversed(ANA[4:11])
    ]
    assert (found["count"], found["total_in"], found["total_out"], found["total_fees"]) == (
        7, "35.50", "70.50", "0.50",
    )  # fmt: skip
    assert found["closing_balance"] == "339.50"

    # All time as CSV: parses back to the totals, and closes on the wallet's balance.
    whole = client.get(url, headers=ana, params={"format": "csv"})
    assert whole.status_code == 200, whole.text
    rows = list(csv.DictReader(io.StringIO(whole.text)))
    kinds = [row["type"] for row in rows]
    assert kinds[0] == "opening_balance"
    assert kinds[-3:] == ["total_in", "total_out", "closing_balance"]
    movements = rows[1:-3]
    assert len(movements) == len(ANA)
    money_in = sum(Decimal(r["amount"]) for r in movements if not r["amount"].startswith("-"))
    money_out = -sum(Decimal(r["amount"]) for r in movements if r["amount"].startswith("-"))
    assert (str(money_in), str(money_out)) == (rows[-3]["amount"], rows[-2]["amount"])
    assert (money_in, money_out) == (Decimal("570.50"), Decimal("253.50"))
    # The wallet account's balance; the balance endpoint counts the 52.50 held in `balance`.
    balance = client.get(f"/wallet/{history.ana.user_id}/balance", headers=ana).json()
    assert (balance["balance"], balance["available"]) == ("369.50", "317.00")
    assert rows[-1]["balance_after"] == balance["available"]
    assert movements[-1]["balance_after"] == "317.00"
    # A period with nothing in it: opening = closing.
    empty = client.get(url, headers=ana, params={"from": "2026-01-01", "to": "2026-01-14"}).json()
    assert (empty["opening_balance"], empty["movements"], empty["closing_balance"]) == (
        "0.00", [], "0.00",
    )  # fmt: skip


def test_a_statement_counted_first_says_how_many_postings_it_holds(books: Books) -> None:
    """`?count=true`: the postings in `X-Statement-Postings`, before the first line (a progress
    bar's total); each posting is one line, or two with its fee's. Not asked, not counted."""
    client, history, ana = books.client, books.history, books.auth["ana"]
    url = f"/reports/statement/{history.ana.user_id}"
    february = {"from": "2026-02-01", "to": "2026-02-28"}
    for kind in ("csv", "json"):
        counted = client.get(url, headers=ana, params={**february, "format": kind,
                                                       "count": "true"})  # fmt: skip
        assert counted.status_code == 200, counted.text
        plain = client.get(url, headers=ana, params={**february, "format": kind})
        assert counted.content == plain.content
        assert "x-statement-postings" not in plain.headers
        movements = client.get(url, headers=ana, params=february).json()["movements"]
        fees = sum(one["type"] == "fee" for one in movements)
        assert int(counted.headers["x-statement-postings"]) == len(movements) - fees
    whole = client.get(url, headers=ana, params={"count": "true"})
    assert int(whole.headers["x-statement-postings"]) == len(
        [one for one in whole.json()["movements"] if one["type"] != "fee"]
    )
    is_problem(client.get(url, headers=ana, params={"count": "yes"}), 400, "invalid_input")


def test_statistics_and_trends(books: Books) -> None:
    client, history, ana = books.client, books.history, books.auth["ana"]
    stats = client.get(f"/reports/stats/{history.ana.user_id}", headers=ana,
                       params={"months": 3})  # fmt: skip
    assert stats.status_code == 200, stats.text
    found = stats.json()
    assert (found["from"], found["until"]) == ("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert found["balance"] == "317.00"
    assert found["in"]["total"] == {"count": 3, "amount": "535.00", "fees": "0.00",
                                    "average": "178.33"}  # fmt: skip
    assert found["out"]["total"] == {"count": 6, "amount": "165.00", "fees": "0.50",
                                     "average": "27.50"}  # fmt: skip
    assert found["out"]["categories"]["withdrawal"] == {
        "count": 1, "amount": "60.00", "fees": "0.50", "average": "60.00",
    }  # fmt: skip
    assert found["held"] == {"count": 2, "amount": "52.00", "fees": "0.50", "average": "26.00"}
    # in - out - held = the balance: 535 - 165.50 - 52.50 = 317.
    assert [(c["phone"], c["sent"], c["received"]) for c in found["counterparties"]] == [
        (history.bruno.phone, "65.00", "5.00"), (history.carla.phone, "10.00", "0.00"),
    ]  # fmt: skip

    trends = client.get(f"/reports/trends/{history.ana.user_id}", headers=ana,
                        params={"months": "3", "period": "month"}).json()  # fmt: skip
    assert [(p["period"], p["out"]["amount"], p["out"]["fees"], p["out_change_percent"])
            for p in trends["periods"]] == [
        ("2026-01", "130.00", "0.50", None), ("2026-02", "35.00", "0.00", -73.2),
        ("2026-03", "0.00", "0.00", -100.0),
    ]  # fmt: skip
    weeks = client.get(f"/reports/trends/{history.ana.user_id}", headers=ana,
                       params={"months": "2", "period": "week"}).json()  # fmt: skip
    assert weeks["period"] == "week"
    # February's and March's weeks, each named by its Monday; out: 25 + 10 in February.
    assert all(date.fromisoformat(p["period"]).weekday() == 0 for p in weeks["periods"])
    assert sum(Decimal(p["out"]["amount"]) for p in weeks["periods"]) == Decimal("35.00")


def test_operators_reports(books: Books) -> None:
    client, admin = books.client, books.auth["admin"]
    volumes = client.get("/admin/reports/volumes", headers=admin, params={"days": 90}).json()
    assert [(r["day"], r["product"], r["count"], r["volume"], r["fees"])
            for r in volumes["rows"]] == [
        ("2026-01-15", "bill", 1, "20.00", "0.00"),
        ("2026-01-15", "topup", 3, "800.00", "0.00"),
        ("2026-01-15", "transfer", 3, "55.00", "0.00"),
        ("2026-01-15", "withdrawal", 1, "60.00", "0.50"),
        ("2026-02-14", "airtime", 1, "10.00", "0.00"),
        ("2026-02-14", "transfer", 1, "25.00", "0.00"),
        ("2026-03-16", "cash_in", 1, "30.00", "0.00"),
    ]  # fmt: skip
    fees = client.get("/admin/reports/fees", headers=admin, params={"days": 90}).json()
    assert fees["fees_accounts"] == {"USD": "0.50"}
    assert [(r["product"], r["fees"]) for r in fees["totals"]] == [("withdrawal", "0.50")]
    active = client.get("/admin/reports/active", headers=admin, params={"days": 90}).json()
    # Ana, Bruno, Carla and the agent moved money; the admin and the auditor have wallets too.
    assert (active["active_in_window"], active["wallets"], len(active["days"])) == (4, 6, 90)
    cash = client.get("/admin/reports/cash", headers=admin, params={"days": 90}).json()
    atm = next(one for one in cash["terminals"] if one["kind"] == "atm")
    assert (atm["paid_out_count"], atm["paid_out"], atm["cassette_cash"]) == (1, "60.00", "640.00")
    holds = client.get("/admin/reports/holds", headers=admin).json()
    assert [(h["kind"], h["state"], h["held"]) for h in holds["holds"]] == [
        ("withdrawal", "pending", "40.50"), ("bill", "unknown", "12.00"),
    ]  # fmt: skip
    assert (holds["held"], holds["holds_accounts"], holds["matches"]) == (
        {"USD": "52.50"}, {"USD": "52.50"}, True,
    )  # fmt: skip
    assert len(client.get("/admin/reports/holds", headers=admin,
                          params={"limit": 1}).json()["holds"]) == 1  # fmt: skip
    trial = client.get("/admin/reports/trial-balance", headers=admin).json()
    assert (trial["totals"], trial["balanced"], trial["matches_postings"]) == (
        {"USD": "0.00"}, True, True,
    )  # fmt: skip
    funding = next(a for a in trial["accounts"] if a["code"] == "funding:sandbox:USD")
    assert funding["balance"] == "-800.00"


def test_who_may_read_what(books: Books) -> None:
    client, history = books.client, books.history
    ana, bruno = books.auth["ana"], books.auth["bruno"]
    mine = client.get(f"/reports/transactions/{history.ana.user_id}", headers=ana).json()
    # Another customer: refused, whether the wallet exists or not (nothing is given away).
    for path in ("transactions", "statement", "stats", "trends"):
        for whose in (history.ana.user_id, "01NOSUCHUSER0000000000000A"):
            is_problem(client.get(f"/reports/{path}/{whose}", headers=bruno), 403,
                       "permission_denied")  # fmt: skip
    for report in ("volumes", "active", "fees", "cash", "holds", "trial-balance"):
        is_problem(client.get(f"/admin/reports/{report}", headers=bruno), 403, "permission_denied")
        is_problem(client.get(f"/admin/reports/{report}"), 401, "not_authenticated")
    is_problem(client.get(f"/reports/transactions/{history.ana.user_id}"), 401,
               "not_authenticated")  # fmt: skip
    # An auditor and an admin read anyone's; no one is 404.
    for reader in (books.auth["audrey"], books.auth["admin"]):
        theirs = client.get(f"/reports/transactions/{history.ana.user_id}", headers=reader)
        assert theirs.json() == mine
        stats = client.get(f"/reports/stats/{history.bruno.user_id}", headers=reader).json()
        assert stats["user"] == {"phone": history.bruno.phone, "name": "Bruno Tembe"}
        assert client.get("/admin/reports/holds", headers=reader).json()["count"] == 2
        for path in ("transactions", "statement", "stats", "trends"):
            is_problem(client.get(f"/reports/{path}/01NOSUCHUSER0000000000000A", headers=reader),
                       404, "user_not_found")  # fmt: skip
            is_problem(client.get(f"/reports/{path}/%00", headers=reader), 404, "user_not_found")


def test_bad_query_parameters_are_4xx_problems(books: Books) -> None:
    client, history, ana = books.client, books.history, books.auth["ana"]
    url = f"/reports/transactions/{history.ana.user_id}"
    refusals: list[tuple[dict[str, str | list[str]], int, str]] = [
        ({"from": "2026-13-01"}, 400, "invalid_input"),
        ({"to": "yesterday"}, 400, "invalid_input"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 400, "invalid_input"),
        ({"to": "9999-12-31"}, 400, "invalid_input"),
        ({"type": "gift"}, 400, "invalid_input"),
        ({"min": "-5"}, 422, "invalid_amount"),
        ({"max": "1.5e3"}, 422, "invalid_amount"),
        ({"min": "12.345"}, 422, "invalid_amount"),
        ({"cursor": "abc"}, 400, "invalid_input"),
        ({"cursor": "0.0"}, 400, "invalid_input"),
        ({"limit": "0"}, 400, "invalid_input"),
        ({"limit": "1001"}, 400, "invalid_input"),
        ({"limit": "-1"}, 400, "invalid_input"),
        ({"limit": "2.5"}, 400, "invalid_input"),
        ({"format": "xml"}, 400, "invalid_input"),
        ({"colour": "red"}, 400, "invalid_input"),
        ({"limit": ["5", "6"]}, 400, "invalid_input"),
    ]
    for params, status, code in refusals:
        is_problem(client.get(url, headers=ana, params=params), status, code)
    # The other listings read their queries as strictly (a typo is not a filter ignored).
    for listing in ("/notifications?unred=true", "/atm/withdrawals?limt=5"):
        is_problem(client.get(listing, headers=ana), 400, "invalid_input")
    user = history.ana.user_id
    for path, query in [
        (f"/reports/statement/{user}", {"from": "2026-02-30"}),
        (f"/reports/statement/{user}", {"format": "pdf"}),
        (f"/reports/stats/{user}", {"months": "0"}),
        (f"/reports/stats/{user}", {"months": "37"}),
        (f"/reports/trends/{user}", {"period": "year"}),
        (f"/reports/trends/{user}", {"months": "many"}),
    ]:
        is_problem(client.get(path, headers=ana, params=query), 400, "invalid_input")
    admin = books.auth["admin"]
    for path, query in [
        ("/admin/reports/volumes", {"days": "0"}),
        ("/admin/reports/active", {"days": "367"}),
        ("/admin/reports/fees", {"days": "-1"}),
        ("/admin/reports/cash", {"days": "x"}),
        ("/admin/reports/holds", {"limit": "0"}),
        ("/admin/reports/trial-balance", {"by_kind": "true"}),
    ]:
        is_problem(client.get(path, headers=admin, params=query), 400, "invalid_input")
    # Over this module, every operation of the service answered as the document describes.
    described = document(["reports"])["paths"]
    reports = {("get", path) for path in described if path.startswith(("/reports", "/admin"))}
    assert len(reports) == 10
    assert reports <= conformance(client).seen
