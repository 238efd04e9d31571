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
