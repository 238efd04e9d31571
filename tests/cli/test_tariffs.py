"""`mwallet fees|limits|admin tariffs|admin limits list|set|admin users tier` and the fee
confirmation of `send`, `withdraw`, `topup --source card` and `pay` through the real entry point
(SQLite): the JSON documents, the text a person reads, bad input as one line on stderr with exit 2
and nothing changed, customers at admin commands exit 9."""

from __future__ import annotations

from typing import Any

import pytest

from mwallet.cli.exit_codes import ExitCode
from mwallet.core.domain.payments import luhn_digit
from tests.cli.harness import Cli, balance_of, count_rows, seed_user
from tests.support import OPERATOR, open_wallet

USAGE = ExitCode.USAGE
NOT_FOUND = ExitCode.NOT_FOUND
FORBIDDEN = ExitCode.FORBIDDEN

MOVEMENTS = ("transfer", "withdrawal-atm", "withdrawal-agent", "bill", "airtime", "topup")
FAMILIES = ("transfer", "withdrawal", "bill", "airtime", "topup")
TARIFFS = ("admin", "tariffs")
SET_TARIFF = ("admin", "tariffs", "set")
LIMITS = ("admin", "limits")
NO_TARIFFS = dict.fromkeys(MOVEMENTS)
ALLOWANCE_KEYS = {"period", "limit", "used", "left"}


def audited(url: str, *actions: str) -> int:
    with open_wallet(url) as wallet:
        return sum(
            one.action in actions for one in wallet.service.audit_log(actor=OPERATOR, limit=1000)
        )


def card(prefix: str = "4111") -> str:
    body = f"{prefix}11111111111"
    return body + luhn_digit(body)


def water() -> str:
    return "1234567" + luhn_digit("1234567")


def no_limit(used: str = "0.00") -> list[dict[str, Any]]:
    return [
        {"period": "daily", "limit": None, "used": used, "left": None},
        {"period": "monthly", "limit": None, "used": used, "left": None},
    ]


# --- admin tariffs -------------------------------------------------------------------------------
def test_admin_tariffs_set_list_and_clear(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    assert admin.ok_json(*TARIFFS) == NO_TARIFFS

    percent = admin.ok_json(*SET_TARIFF, "transfer", "--percent", "1.5", "--min", "0.10",
                            "--max", "2")  # fmt: skip
    assert percent == {
        "transfer": {
            "bands": [{"up_to": None, "flat": "0.00", "percent": "1.5"}],
            "min": "0.10",
            "max": "2.00",
            "text": "1.5% (min 0.10, max 2.00)",
        }
    }
    said = admin.ok(*SET_TARIFF, "withdrawal-atm", "--flat", "1.50").stdout
    assert said.strip() == "withdrawal-atm: 1.50"
    banded = admin.ok_json(*SET_TARIFF, "bill", "--band", "100:0.50", "--band", "*:0:1")
    assert banded["bill"]["bands"] == [
        {"up_to": "100.00", "flat": "0.50", "percent": "0"},
        {"up_to": None, "flat": "0.00", "percent": "1"},
    ]
    assert banded["bill"]["text"] == "up to 100.00: 0.50; above: 1%"
    both = admin.ok(*SET_TARIFF, "topup", "--flat", "0.25", "--percent", "2").stdout
    assert both.strip() == "topup: 2% + 0.25"
    assert admin.ok(*SET_TARIFF, "airtime", "--flat", "0").stdout.strip() == "airtime: free"

    listed = admin.ok_json(*TARIFFS)
    assert listed == {
        **NO_TARIFFS,
        "transfer": percent["transfer"],
        "withdrawal-atm": {
            "bands": [{"up_to": None, "flat": "1.50", "percent": "0"}],
            "min": "0.00",
            "max": None,
            "text": "1.50",
        },
        "bill": banded["bill"],
        "topup": {
            "bands": [{"up_to": None, "flat": "0.25", "percent": "2"}],
            "min": "0.00",
            "max": None,
            "text": "2% + 0.25",
        },
    }
    table = admin.ok(*TARIFFS).stdout
    assert "Fees (USD)" in table
    assert "up to 100.00: 0.50; above: 1%" in table
    assert "withdrawal-agent" in table

    assert admin.ok_json(*TARIFFS, "clear", "transfer") == {"transfer": None}
    assert admin.ok(*TARIFFS, "clear", "bill").stdout.strip() == "bill: free"
    assert admin.ok_json(*TARIFFS)["transfer"] is None
    assert count_rows(db_url, "tariffs") == 2  # withdrawal-atm and topup
    assert audited(db_url, "tariff.set") == 7

    # Anyone logged in reads the price list (`mwallet fees`); only admins change it.
    cli.login(seed_user(db_url).phone)
    assert cli.ok_json("fees") == admin.ok_json(*TARIFFS)
    assert "Fees (USD)" in cli.ok("fees").stdout
    cli.fails(FORBIDDEN, *SET_TARIFF, "transfer", "--flat", "1")
    assert cli.fails_json(FORBIDDEN, *TARIFFS, "clear", "topup")["error"] == "permission_denied"
    assert count_rows(db_url, "tariffs") == 2
    assert audited(db_url, "tariff.set") == 7


def test_admin_tariffs_set_refuses_bad_input_and_changes_nothing(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    admin.ok(*SET_TARIFF, "transfer", "--flat", "0.50")
    before = admin.ok_json(*TARIFFS)
    cases: list[tuple[tuple[str, ...], str]] = [
        (("teleport", "--flat", "1"), "unknown movement 'teleport'"),
        (("withdrawal", "--flat", "1"), "one of: transfer, withdrawal-atm"),
        (("transfer", "--percent", "abc"), "not a percentage: 'abc'"),
        (("transfer", "--percent", "101"), "a percentage is between 0 and 100"),
        (("transfer", "--percent", "-1"), "a percentage is between 0 and 100"),
        (("transfer", "--percent", "1.555"), "at most two decimals"),
        (("transfer", "--flat", "abc"), "'abc' is not an amount"),
        (("transfer", "--flat", "0.505"), "0.505"),
        (("transfer", "--band", "100"), "UP_TO:FLAT or UP_TO:FLAT:PERCENT"),
        (("transfer", "--band", "100:0.5:1:2"), "UP_TO:FLAT or UP_TO:FLAT:PERCENT"),
        (("transfer", "--band", "a:0.5"), "'a' is not an amount"),
        (("transfer", "--band", "100:0.50"), "the last band must cover any amount"),
        (("transfer", "--band", "*:0.50", "--band", "*:1"), "only the last band"),
        (("transfer", "--band", "200:1", "--band", "100:1", "--band", "*:2"), "increasing"),
        (("transfer", "--band", "*:0.5", "--flat", "1"), "not both"),
        (("transfer", "--band", "*:0.5", "--percent", "1"), "not both"),
        (("transfer", "--flat", "1", "--min", "3", "--max", "2"), "at least the minimum"),
    ]
    for args, wanted in cases:
        line = admin.fails(USAGE, *SET_TARIFF, *args)
        assert wanted in line, (args, line)
    refused = admin.fails_json(USAGE, *SET_TARIFF, "transfer", "--percent", "101")
    assert refused["error"] == "invalid_input"
    assert "unknown movement" in admin.fails(USAGE, *TARIFFS, "clear", "teleport")
    assert admin.ok_json(*TARIFFS) == before
    assert audited(db_url, "tariff.set") == 1


# --- admin limits --------------------------------------------------------------------------------
def test_admin_limits_list_and_set(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    listed = admin.ok_json(*LIMITS, "list")
    expected = [
        {
            "family": family,
            "tier": tier,
            "daily": "2000.00" if family == "withdrawal" else None,
            "monthly": None,
        }
        for family in FAMILIES
        for tier in ("basic", "verified")
    ]
    assert listed == expected

    changed = admin.ok_json(*LIMITS, "set", "transfer", "--tier", "basic", "--daily", "100",
                            "--monthly", "1000")  # fmt: skip
    assert changed == {"family": "transfer", "tier": "basic", "daily": "100.00",
                       "monthly": "1000.00"}  # fmt: skip
    said = admin.ok(*LIMITS, "set", "transfer", "--tier", "basic", "--daily", "none").stdout
    assert said.strip() == "transfer, basic tier: no limit a day, 1000.00 a month"
    said = admin.ok(*LIMITS, "set", "bill", "--tier", "verified", "--monthly", "500").stdout
    assert said.strip() == "bill payment, verified tier: no limit a day, 500.00 a month"
    only_month = admin.ok_json(*LIMITS, "set", "withdrawal", "--tier", "VERIFIED", "--monthly",
                               "5000")  # fmt: skip
    assert only_month == {"family": "withdrawal", "tier": "verified", "daily": "2000.00",
                          "monthly": "5000.00"}  # fmt: skip

    now = admin.ok_json(*LIMITS, "list")
    assert {(one["family"], one["tier"]): (one["daily"], one["monthly"]) for one in now} == {
        **{(one["family"], one["tier"]): (one["daily"], one["monthly"]) for one in expected},
        ("transfer", "basic"): (None, "1000.00"),
        ("bill", "verified"): (None, "500.00"),
        ("withdrawal", "verified"): ("2000.00", "5000.00"),
    }
    table = admin.ok(*LIMITS, "list").stdout
    assert "Limits per user" in table
    assert "no limit" in table
    assert "5000.00" in table
    assert audited(db_url, "limit.set") == 4

    # Anyone logged in may read them; only admins set them.
    cli.login(seed_user(db_url).phone)
    assert cli.ok_json(*LIMITS, "list") == now
    cli.fails(FORBIDDEN, *LIMITS, "set", "transfer", "--tier", "basic", "--daily", "1")
    assert audited(db_url, "limit.set") == 4


def test_admin_limits_set_refuses_bad_input_and_changes_nothing(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    admin.ok(*LIMITS, "set", "bill", "--tier", "basic", "--daily", "100", "--monthly", "500")
    before = admin.ok_json(*LIMITS, "list")
    cases: list[tuple[tuple[str, ...], str]] = [
        (("gambling", "--tier", "basic", "--daily", "1"), "unknown limit 'gambling'"),
        (("bill", "--tier", "gold", "--daily", "1"), "unknown tier 'gold'; one of: basic"),
        (("bill", "--tier", "basic"), "give --daily and/or --monthly"),
        (("bill", "--daily", "1"), "Missing option '--tier'"),
        (("bill", "--tier", "basic", "--daily", "abc"), "'abc' is not an amount"),
        (("bill", "--tier", "basic", "--daily", "0"), "greater than zero"),
        (("bill", "--tier", "basic", "--daily", "600"), "cannot be above the monthly"),
        (("bill", "--tier", "basic", "--monthly", "99.99"), "cannot be above the monthly"),
        # Valid parts are not stored when another part is refused.
        (("bill", "--tier", "basic", "--daily", "50", "--monthly", "40"), "above the monthly"),
    ]
    for args, wanted in cases:
        line = admin.fails(USAGE, *LIMITS, "set", *args)
        assert wanted in line, (args, line)
    refused = admin.fails_json(USAGE, *LIMITS, "set", "bill", "--tier", "gold", "--daily", "1")
    assert refused["error"] == "invalid_input"
    assert admin.ok_json(*LIMITS, "list") == before
    assert audited(db_url, "limit.set") == 1


# --- admin users tier, and what a user sees -------------------------------------------------------
def test_admin_users_tier_and_mwallet_limits(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    ana = seed_user(db_url, name="Ana Machava", funds="500")
    bruno = seed_user(db_url, name="Bruno Tembe")
    admin.ok(*LIMITS, "set", "transfer", "--tier", "basic", "--daily", "100")
    admin.ok(*LIMITS, "set", "transfer", "--tier", "verified", "--daily", "1000", "--monthly",
             "5000")  # fmt: skip
    cli.login(ana.phone)
    cli.ok_json("send", "40", "--to", bruno.phone)

    mine = cli.ok_json("limits")
    assert mine == {
        "tier": "basic",
        "limits": {
            "transfer": [
                {"period": "daily", "limit": "100.00", "used": "40.00", "left": "60.00"},
                {"period": "monthly", "limit": None, "used": "40.00", "left": None},
            ],
            "withdrawal": [
                {"period": "daily", "limit": "2000.00", "used": "0.00", "left": "2000.00"},
                {"period": "monthly", "limit": None, "used": "0.00", "left": None},
            ],
            "bill": no_limit(),
            "airtime": no_limit(),
            "topup": no_limit(),
        },
    }
    table = cli.ok("limits").stdout
    assert "Your limits (basic tier)" in table
    assert "60.00 USD" in table

    user = admin.ok_json("admin", "users", "tier", ana.phone, "verified")
    assert (user["user_id"], user["phone"], user["tier"]) == (ana.user_id, ana.phone, "verified")
    said = admin.ok("admin", "users", "tier", bruno.phone, "Verified").stdout
    assert said.strip() == f"Bruno Tembe ({bruno.phone}) is now verified."
    now = cli.ok_json("limits")
    assert now["tier"] == "verified"
    assert now["limits"]["transfer"] == [
        {"period": "daily", "limit": "1000.00", "used": "40.00", "left": "960.00"},
        {"period": "monthly", "limit": "5000.00", "used": "40.00", "left": "4960.00"},
    ]
    listed = {one["phone"]: one["tier"] for one in admin.ok_json("admin", "users", "list")}
    assert (listed[ana.phone], listed[bruno.phone]) == ("verified", "verified")
    assert audited(db_url, "user.tier_changed") == 2

    # Bad input, unknown people, customers: nothing changes.
    assert "unknown tier 'gold'" in admin.fails(USAGE, "admin", "users", "tier", ana.phone, "gold")
    assert "+258849999999" in admin.fails(
        NOT_FOUND, "admin", "users", "tier", "+258849999999", "basic"
    )
    cli.fails(FORBIDDEN, "admin", "users", "tier", ana.phone, "basic")
    assert audited(db_url, "user.tier_changed") == 2
    assert cli.ok_json("limits")["tier"] == "verified"


@pytest.mark.remote
def test_mwallet_fees_quotes_a_movement(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    admin.ok(*SET_TARIFF, "transfer", "--band", "100:0.50", "--band", "*:0:1", "--max", "5")
    admin.ok(*LIMITS, "set", "transfer", "--tier", "basic", "--daily", "300")
    ana = seed_user(db_url, name="Ana Machava", funds="1000")
    bruno = seed_user(db_url, name="Bruno Tembe")
    cli.login(ana.phone)
    cli.ok_json("send", "200", "--to", bruno.phone)  # 2.00 of fee

    quote = cli.ok_json("fees", "transfer", "100")
    assert quote == {
        "movement": "transfer",
        "amount": "100.00",
        "fee": "0.50",
        "total": "100.50",
        "currency": "USD",
        "tier": "basic",
        "within_limits": True,
        "limits": [
            {"period": "daily", "limit": "300.00", "used": "200.00", "left": "100.00"},
            {"period": "monthly", "limit": None, "used": "200.00", "left": None},
        ],
    }
    over = cli.ok_json("fees", "transfer", "100.01")
    assert (over["fee"], over["total"], over["within_limits"]) == ("1.00", "101.01", False)
    said = cli.ok("fees", "transfer", "100.01").stdout.splitlines()
    assert said[0] == "transfer of 100.01 USD: fee 1.00 USD, total 101.01 USD"
    assert "daily limit: 100.00 USD left" in said[1]
    assert "This would pass your limit." in said[2]
    table = cli.ok_json("fees")  # the fee table: every movement, free ones as null
    assert table == admin.ok_json(*TARIFFS)
    assert table["transfer"]["text"] == "up to 100.00: 0.50; above: 1% (max 5.00)"
    assert table["bill"] is None
    shown = cli.ok("fees").stdout
    assert "Fees (USD)" in shown
    assert "airtime" in shown
    free = cli.ok_json("fees", "withdrawal-agent", "60")
    assert (free["fee"], free["total"], free["within_limits"]) == ("0.00", "60.00", True)
    assert balance_of(db_url, ana) == "798.00"  # quoting moves nothing

    assert "give the amount to quote" in cli.fails(USAGE, "fees", "transfer")
    assert "unknown movement 'teleport'" in cli.fails(USAGE, "fees", "teleport", "10")
    assert "'abc' is not an amount" in cli.fails(USAGE, "fees", "transfer", "abc")


# --- the fee, confirmed before money moves --------------------------------------------------------
@pytest.mark.remote
def test_send_with_a_fee_needs_yes_without_a_terminal(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Tembe")
    cli.login(ana.phone)
    # No fee: nothing to confirm.
    free = cli.ok_json("send", "10", "--to", bruno.phone)
    assert (free["amount"], free["fee"]) == ("10.00", "0.00")
    assert "fee" not in cli.ok("send", "10", "--to", bruno.phone).stdout

    cli.as_admin().ok(*SET_TARIFF, "transfer", "--flat", "1")
    line = cli.fails(USAGE, "send", "10", "--to", bruno.phone)
    assert f"Send 10.00 USD to {bruno.phone} costs fee 1.00 USD, total 11.00 USD" in line, line
    assert "confirm with --yes (no terminal to ask on)" in line
    assert (balance_of(db_url, ana), balance_of(db_url, bruno)) == ("80.00", "20.00")
    assert count_rows(db_url, "transfers") == 2

    said = cli.ok("send", "10", "--to", bruno.phone, "--yes").stdout
    assert f"Sent 10.00 USD to {bruno.phone} (fee 1.00 USD)" in said, said
    sent = cli.ok_json("send", "5", "--to", bruno.phone)  # --json never asks
    assert (sent["amount"], sent["fee"]) == ("5.00", "1.00")
    assert (balance_of(db_url, ana), balance_of(db_url, bruno)) == ("63.00", "35.00")


@pytest.mark.remote
def test_withdraw_topup_and_pay_show_the_fee_before_moving(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    admin.ok(*SET_TARIFF, "withdrawal-atm", "--flat", "1.50")
    admin.ok(*SET_TARIFF, "topup", "--percent", "2")
    admin.ok(*SET_TARIFF, "bill", "--flat", "0.25")
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    cli.login(ana.phone)

    line = cli.fails(USAGE, "withdraw", "10")
    assert "Withdraw 10.00 USD at an atm costs fee 1.50 USD, total 11.50 USD" in line, line
    line = cli.fails(USAGE, "topup", "50", "--source", "card", "--card", card())
    assert "costs fee 1.00 USD, total 51.00 USD: confirm with --yes" in line, line
    line = cli.fails(USAGE, "pay", "bill", "10", "--biller", "aguas-maputo", "--reference",
                     water())  # fmt: skip
    assert "fee 0.25 USD, total 10.25 USD: confirm with --yes" in line, line
    # Airtime has no fee, but a payment always asks.
    line = cli.fails(USAGE, "pay", "airtime", "10", "--phone", "+258841110001")
    assert "no fee: confirm with --yes" in line, line
    assert count_rows(db_url, "withdrawals") + count_rows(db_url, "payments") == 0
    assert balance_of(db_url, ana) == "100.00"

    topped = cli.ok_json("topup", "50", "--source", "card", "--card", card())
    assert (topped["amount"], topped["fee"], topped["state"]) == ("50.00", "1.00", "succeeded")
    paid = cli.ok("pay", "bill", "10", "--biller", "aguas-maputo", "--reference", water(),
                  "--yes").stdout  # fmt: skip
    assert "Succeeded: 10.00 USD to aguas-maputo" in paid
    issued = cli.ok_json("withdraw", "10")
    assert (issued["amount"], issued["fee"]) == ("10.00", "1.50")
    balance = cli.ok_json("balance")
    # 100 + 50 - 10.25; 11.50 held.
    assert (balance["balance"], balance["available"]) == ("139.75", "128.25")


def test_admin_tariffs_set_with_nothing_to_set_is_refused(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    admin.ok(*SET_TARIFF, "transfer", "--flat", "0.50")
    outcome = admin.run(*SET_TARIFF, "transfer")
    assert admin.ok_json(*TARIFFS)["transfer"] is not None  # still priced
    assert outcome.code == USAGE, outcome
