"""`mwallet billers|pay bill|payments|admin billers|admin payments` through the real entry point
(SQLite): the JSON documents, the text a person reads, and the exit codes of a declined bill (4,
the payment still on stdout), a bad reference (2), an unknown biller (5), a missing --yes without
a terminal (2) and a customer at an admin command (9)."""

from __future__ import annotations

import json
import re

import pytest

from mwallet.cli.exit_codes import ExitCode
from mwallet.core.domain.payments import luhn_digit
from tests.cli.harness import Cli, balance_of, count_rows, seed_user

USAGE = ExitCode.USAGE
REFUSED = ExitCode.REFUSED
NOT_FOUND = ExitCode.NOT_FOUND
FORBIDDEN = ExitCode.FORBIDDEN

BILLER_KEYS = {
    "id",
    "name",
    "category",
    "currency",
    "min",
    "max",
    "reference_pattern",
    "check_digit",
    "provider",
    "active",
}
PAYMENT_KEYS = {
    "id",
    "product",
    "biller_id",
    "reference",
    "amount",
    "fee",
    "currency",
    "state",
    "provider_ref",
    "reason",
    "created_at",
    "updated_at",
}


def water(prefix: str = "1234", n: int = 567) -> str:
    body = f"{prefix}{n:03d}"
    return body + luhn_digit(body)


def pay_bill(
    *extra: str, amount: str = "10", biller: str = "aguas-maputo", ref: str = ""
) -> list[str]:
    return ["pay", "bill", amount, "--biller", biller, "--reference", ref or water(), *extra]


# --- the catalogue -------------------------------------------------------------------------------
@pytest.mark.remote
def test_billers_lists_what_people_can_pay(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    cli.login(ana.phone)
    listed = cli.ok_json("billers")
    assert all(set(one) == BILLER_KEYS for one in listed), listed
    found = {one["id"]: one for one in listed}
    assert {"aguas-maputo", "edm-credelec", "tvcabo", "net-fibra"} <= set(found)
    assert found["aguas-maputo"] == {
        "id": "aguas-maputo",
        "name": "Águas da Região de Maputo",
        "category": "water",
        "currency": "USD",
        "min": "1.00",
        "max": "5000.00",
        "reference_pattern": "[0-9]{8}",
        "check_digit": "luhn",
        "provider": "sandbox",
        "active": True,
    }
    assert (found["net-fibra"]["check_digit"], found["tvcabo"]["check_digit"]) == ("mod97", "none")
    assert all(one["active"] is True for one in listed)

    shown = cli.ok("billers").stdout
    assert "aguas-maputo" in shown
    assert "[0-9]{8} (luhn check digit)" in shown
    assert "MZ[0-9A-Z]{8,22} (mod97 check digit)" in shown


# --- paying --------------------------------------------------------------------------------------
@pytest.mark.remote
def test_a_bill_paid_then_listed_and_shown(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    cli.login(ana.phone)
    paid = cli.ok_json(*pay_bill(amount="45.80", ref="1234 5674"))
    assert set(paid) == PAYMENT_KEYS | {"idempotency_key"}
    assert (
        paid["product"],
        paid["biller_id"],
        paid["reference"],
        paid["amount"],
        paid["fee"],
        paid["currency"],
        paid["state"],
        paid["reason"],
    ) == ("bill", "aguas-maputo", "12345674", "45.80", "0.00", "USD", "succeeded", None)
    assert paid["provider_ref"] == f"SBX-{paid['id'][-10:]}"
    assert paid["idempotency_key"].startswith("cli-")
    assert balance_of(db_url, ana) == "54.20"

    # The same key again: the same payment, no second charge.
    again = cli.ok_json(
        *pay_bill("--idempotency-key", paid["idempotency_key"], amount="45.80", ref="12345674")
    )
    assert again == paid
    assert balance_of(db_url, ana) == "54.20"

    said = cli.ok(*pay_bill("--yes", amount="4.20", biller="tvcabo", ref="123456")).stdout
    assert "Succeeded: 4.20 USD to tvcabo, reference 123456" in said
    assert re.search(r"receipt SBX-\w{10}\s+id \w{26}", said), said

    listed = cli.ok_json("payments")
    assert [(one["biller_id"], one["amount"], one["state"]) for one in listed] == [
        ("tvcabo", "4.20", "succeeded"),
        ("aguas-maputo", "45.80", "succeeded"),
    ]
    assert all(set(one) == PAYMENT_KEYS for one in listed)
    assert len(cli.ok_json("payments", "--limit", "1")) == 1
    shown = cli.ok_json("payments", "show", paid["id"])
    assert shown == {
        **{k: v for k, v in paid.items() if k != "idempotency_key"},
        "biller_name": "Águas da Região de Maputo",
    }
    assert count_rows(db_url, "payments") == 2


@pytest.mark.remote
def test_a_declined_bill_exits_4_with_the_payment_on_stdout(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    cli.login(ana.phone)
    declined = water("9991")

    outcome = cli.run(*pay_bill("--json", amount="12", ref=declined))
    assert outcome.code == REFUSED, outcome.stderr
    payment = json.loads(outcome.stdout)
    assert (payment["state"], payment["reason"], payment["provider_ref"]) == (
        "failed",
        "account closed",
        None,
    )
    assert outcome.error_json() == {
        "error": "payment_declined",
        "message": "declined: account closed",
    }

    text = cli.run(*pay_bill("--yes", amount="13", ref=declined))
    assert text.code == REFUSED
    assert "Failed: 13.00 USD to aguas-maputo" in text.stdout
    assert "account closed" in text.stdout
    assert text.error_line() == "error: declined: account closed"
    assert balance_of(db_url, ana) == "100.00"


def test_an_unknown_bill_holds_the_money_until_an_admin_reconciles(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    cli.login(ana.phone)
    unknown = cli.ok_json(*pay_bill(amount="25", biller="tvcabo", ref="99920001"))
    assert (unknown["state"], unknown["reason"]) == ("unknown", "the provider timed out")
    never = cli.ok(*pay_bill("--yes", amount="5", biller="tvcabo", ref="99940001")).stdout
    assert "the provider has not answered: the money is held" in never
    held = cli.ok_json("balance")
    assert (held["balance"], held["available"]) == ("100.00", "70.00")

    admin = cli.as_admin()
    assert admin.ok_json("admin", "payments", "reconcile") == {
        "succeeded": 1,
        "failed": 0,
        "still_unknown": 1,
    }
    assert (
        "Settled 0: 0 succeeded, 0 failed; 1 still unknown."
        in admin.ok("admin", "payments", "reconcile").stdout
    )
    settled = cli.ok_json("payments", "show", unknown["id"])
    assert (settled["state"], settled["provider_ref"]) == (
        "succeeded",
        f"SBX-{unknown['id'][-10:]}",
    )
    after = cli.ok_json("balance")
    assert (after["balance"], after["available"]) == ("75.00", "70.00")


@pytest.mark.remote
def test_bad_payments_are_refused_with_their_exit_codes(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="20")
    cli.login(ana.phone)
    typo = cli.fails(USAGE, *pay_bill("--yes", ref="1234 5675"))
    assert typo == "error: '1234 5675': the check digit does not match (a typo?)"
    assert "is not a Águas da Região de Maputo reference" in cli.fails(
        USAGE, *pay_bill("--yes", ref="1234567")
    )
    assert cli.fails_json(NOT_FOUND, *pay_bill(biller="no-such-biller")) == {
        "error": "biller_not_found",
        "message": "no biller 'no-such-biller': see mwallet billers",
    }
    # No --yes, and no terminal to ask on (stdin is a pipe): nothing is paid.
    assert "confirm with --yes" in cli.fails(USAGE, *pay_bill())
    assert "takes 1.00 USD to 5,000.00 USD" in cli.fails(USAGE, *pay_bill("--yes", amount="0.50"))
    poor = cli.fails_json(REFUSED, *pay_bill(amount="20.01"))
    assert poor["error"] == "insufficient_funds"
    assert cli.fails_json(NOT_FOUND, "payments", "show", "01HZZZZZZZZZZZZZZZZZZZZZZZ")["error"] == (
        "payment_not_found"
    )
    assert count_rows(db_url, "payments") == 0
    assert balance_of(db_url, ana) == "20.00"


# --- admins --------------------------------------------------------------------------------------
def test_admins_add_disable_and_enable_billers_customers_get_exit_9(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    admin = cli.as_admin()
    added = admin.ok_json(
        "admin", "billers", "add", "aguas-beira", "--name", "Águas da Beira", "--category",
        "water", "--min", "2", "--max", "300", "--pattern", "B[0-9]{6}",
    )  # fmt: skip
    assert added == {
        "id": "aguas-beira",
        "name": "Águas da Beira",
        "category": "water",
        "currency": "USD",
        "min": "2.00",
        "max": "300.00",
        "reference_pattern": "B[0-9]{6}",
        "check_digit": "none",
        "provider": "sandbox",
        "active": True,
    }
    assert "already" in admin.fails(
        REFUSED, "admin", "billers", "add", "aguas-beira", "--name", "Again", "--category", "water"
    )
    assert "unknown category 'gas'" in admin.fails(
        USAGE, "admin", "billers", "add", "gas-co", "--name", "Gas Co", "--category", "gas"
    )
    assert admin.ok_json("admin", "billers", "disable", "tvcabo") == {
        "biller_id": "tvcabo",
        "active": False,
    }

    cli.login(ana.phone)
    ids = [one["id"] for one in cli.ok_json("billers")]
    assert "aguas-beira" in ids
    assert "tvcabo" not in ids
    assert cli.ok_json(*pay_bill(amount="2", biller="aguas-beira", ref="b123456"))["state"] == (
        "succeeded"
    )
    cli.fails(NOT_FOUND, *pay_bill("--yes", biller="tvcabo", ref="123456"))
    for args in (
        ("admin", "billers", "add", "mine", "--name", "Mine", "--category", "other"),
        ("admin", "billers", "disable", "aguas-maputo"),
        ("admin", "billers", "enable", "tvcabo"),
        ("admin", "payments", "reconcile"),
    ):
        assert cli.fails_json(FORBIDDEN, *args)["error"] == "permission_denied"

    assert "Biller tvcabo is enabled." in admin.ok("admin", "billers", "enable", "tvcabo").stdout
    assert admin.fails_json(NOT_FOUND, "admin", "billers", "enable", "nobody")["error"] == (
        "biller_not_found"
    )
    assert "tvcabo" in [one["id"] for one in cli.ok_json("billers")]
