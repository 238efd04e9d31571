"""Roles through the real entry point: the first admin, user administration, exit 9; looking a
person up by phone on both doors."""

from __future__ import annotations

import pytest

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli, seed_user
from tests.support import new_phone


def test_the_first_admin_manages_users_and_customers_get_exit_9(cli: Cli) -> None:
    olga, ana = new_phone(), new_phone()
    cli.register(olga)
    cli.register(ana)
    assert cli.ok_json("init", "--admin-phone", olga)["admin"] == olga
    assert "admin already" in cli.fails(ExitCode.FORBIDDEN, "init", "--admin-phone", ana)

    cli.login(ana)
    denied = cli.fails_json(ExitCode.FORBIDDEN, "admin", "users", "list")
    assert denied == {"error": "permission_denied", "message": "a customer may not list users"}
    cli.fails(ExitCode.FORBIDDEN, "admin", "ledger", "verify")

    cli.login(olga)
    assert cli.ok_json("whoami")["role"] == "admin"
    listed = {user["phone"]: user["role"] for user in cli.ok_json("admin", "users", "list")}
    assert listed == {olga: "admin", ana: "customer"}
    assert cli.ok_json("admin", "users", "set-role", ana, "auditor")["role"] == "auditor"
    assert cli.ok_json("admin", "users", "show", ana)["role"] == "auditor"
    assert "role" in cli.fails(ExitCode.USAGE, "admin", "users", "set-role", ana, "king")
    assert cli.ok_json("admin", "users", "freeze", ana) == {"phone": ana, "status": "frozen"}
    assert "last admin" in cli.fails(
        ExitCode.REFUSED, "admin", "users", "set-role", olga, "customer"
    )

    cli.login(ana)
    assert cli.ok_json("admin", "ledger", "verify")["ok"] is True  # auditors read the books
    cli.fails(ExitCode.FORBIDDEN, "admin", "users", "unfreeze", ana)


@pytest.mark.remote
def test_admin_users_show_on_both_doors(cli: Cli, db_url: str) -> None:
    """`admin users show PHONE` reads the same record on a database and through the server (its
    look-up, `GET /admin/users/by-phone/{phone}`): the same table, document and exit codes."""
    ana, bruno = seed_user(db_url, name="Ana Machava"), seed_user(db_url, name="Bruno Tembe")
    cli.login(ana.phone)
    for phone in (bruno.phone, "+258849999999"):  # refused whether or not the number is known
        assert cli.fails_json(ExitCode.FORBIDDEN, "admin", "users", "show", phone) == {
            "error": "permission_denied", "message": "a customer may not look up users",
        }  # fmt: skip
    admin = cli.as_admin(same_door=True)
    shown = admin.ok_json("admin", "users", "show", bruno.phone)
    assert (shown["user_id"], shown["phone"], shown["display_name"], shown["role"]) == (
        bruno.user_id, bruno.phone, "Bruno Tembe", "customer",
    )  # fmt: skip
    assert "Bruno Tembe" in admin.ok("admin", "users", "show", bruno.phone).stdout
    assert admin.fails_json(ExitCode.NOT_FOUND, "admin", "users", "show", "+258849999999") == {
        "error": "user_not_found", "message": "no user is registered to +258849999999",
    }  # fmt: skip
    assert "is not a phone number" in admin.fails(ExitCode.USAGE, "admin", "users", "show", "+1")


@pytest.mark.remote
def test_an_admin_changes_a_persons_role_tier_and_wallet_on_both_doors(
    cli: Cli, db_url: str
) -> None:
    """`admin users set-role|tier|freeze|unfreeze` on a database and through the server (`POST
    /admin/users/role|tier`, `/admin/wallets/status`): the same documents, lines and exit codes;
    a customer and an auditor are refused (9) and nothing changes."""
    ana = seed_user(db_url, name="Ana Machava", funds="10")
    bruno = seed_user(db_url, name="Bruno Tembe")
    changes = (
        ("admin", "users", "set-role", bruno.phone, "auditor"),
        ("admin", "users", "tier", bruno.phone, "verified"),
        ("admin", "users", "freeze", bruno.phone),
        ("admin", "users", "unfreeze", bruno.phone),
    )
    cli.login(ana.phone)
    for args in changes:
        assert cli.fails_json(ExitCode.FORBIDDEN, *args)["error"] == "permission_denied", args
    admin = cli.as_admin(same_door=True)
    unchanged = admin.ok_json("admin", "users", "show", bruno.phone)
    assert (unchanged["role"], unchanged["tier"]) == ("customer", "basic")
    assert cli.ok_json("send", "--to", bruno.phone, "1")["amount"] == "1.00"

    made = admin.ok_json(*changes[0])
    assert (made["user_id"], made["phone"], made["role"]) == (bruno.user_id, bruno.phone, "auditor")
    said = admin.ok(*changes[1]).stdout
    assert said.strip() == f"Bruno Tembe ({bruno.phone}) is now verified."
    assert admin.ok_json("admin", "users", "show", bruno.phone)["tier"] == "verified"
    assert admin.ok_json(*changes[2]) == {"phone": bruno.phone, "status": "frozen"}
    assert "recipient" in cli.fails(ExitCode.REFUSED, "send", "--to", bruno.phone, "1")
    assert "now active" in admin.ok(*changes[3]).stdout
    assert cli.ok_json("send", "--to", bruno.phone, "1")["amount"] == "1.00"

    # An auditor reads the books but changes no one.
    auditor = Cli(home=cli.home.parent / "bruno", db=cli.db, cwd=cli.cwd, extra_env=cli.extra_env)
    auditor.login(bruno.phone)
    for args in (("admin", "users", "tier", ana.phone, "verified"),
                 ("admin", "users", "freeze", ana.phone),
                 ("admin", "users", "set-role", ana.phone, "auditor")):  # fmt: skip
        assert "an auditor may not" in auditor.fails(ExitCode.FORBIDDEN, *args), args
    assert admin.ok_json("admin", "users", "show", ana.phone)["role"] == "customer"

    # Bad input, no one, the last admin: the same exit codes and errors on both doors.
    assert "role" in admin.fails(ExitCode.USAGE, "admin", "users", "set-role", ana.phone, "king")
    assert "unknown tier 'gold'" in admin.fails(
        ExitCode.USAGE, "admin", "users", "tier", ana.phone, "gold"
    )
    assert admin.fails_json(ExitCode.NOT_FOUND, "admin", "users", "tier", "+258849999999",
                            "basic") == {
        "error": "user_not_found", "message": "no user is registered to +258849999999",
    }  # fmt: skip
    assert "'a/b'" in admin.fails(ExitCode.USAGE, "admin", "users", "freeze", "a/b")
    own = admin.ok_json("whoami")["phone"]
    last = admin.fails_json(ExitCode.REFUSED, "admin", "users", "set-role", own, "customer")
    assert "last admin" in last["message"]
    assert admin.ok_json("whoami")["role"] == "admin"
