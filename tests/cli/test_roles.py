"""Roles through the real entry point: the first admin, user administration, exit 9."""

from __future__ import annotations

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli
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
