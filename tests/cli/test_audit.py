"""`mwallet admin audit show|verify` and the login lockout, through the real entry point."""

from __future__ import annotations

import stat

import pytest

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli, seed_user, tamper
from tests.support import new_phone


def test_a_locked_number_is_refused_with_exit_3_and_the_attempts_are_on_record(
    cli: Cli, db_url: str
) -> None:
    admin = cli.as_admin()
    phone = new_phone()
    cli.register(phone)
    for _ in range(4):
        assert "wrong phone number or password" in cli.fails(
            ExitCode.NOT_AUTHENTICATED, "login", "--phone", phone, "--password-stdin",
            stdin="not-my-password\n",
        )  # fmt: skip
    locked = cli.fails_json(
        ExitCode.NOT_AUTHENTICATED, "login", "--phone", phone, "--password-stdin", "--json",
        stdin="not-my-password\n",
    )  # fmt: skip
    assert locked["error"] == "account_locked"
    assert "too many failed logins" in cli.fails(
        ExitCode.NOT_AUTHENTICATED, "login", "--phone", phone, "--password-stdin",
        stdin="correct-horse-battery\n",
    )  # fmt: skip

    records = admin.ok_json("admin", "audit", "show", "--limit", "3")
    assert [record["action"] for record in records] == [
        "login.refused_locked",
        "login.locked",
        "login.failed",
    ]
    assert records[2]["details"] == {"failures": 5, "reason": "password"}
    assert all(record["subject"] == phone for record in records)


def test_verify_anchors_the_chain_and_finds_tampering(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    seed_user(db_url)
    seed_user(db_url)

    assert "The audit log is intact" in admin.ok("admin", "audit", "verify").stdout
    anchor = admin.home / "audit-anchor.json"
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    report = admin.ok_json("admin", "audit", "verify")
    newest = report["records"]
    assert report == {"ok": True, "records": newest, "problem": None, "anchored_at": newest}

    # Someone removes the newest record and moves the head back: a whole but shorter chain.
    tamper(db_url, f"DELETE FROM audit_log WHERE seq = {newest}")
    tamper(
        db_url,
        f"UPDATE audit_head SET seq = {newest - 1}, "
        f"hash = (SELECT hash FROM audit_log WHERE seq = {newest - 1})",
    )
    broken = admin.run("admin", "audit", "verify", "--json")
    assert broken.code == ExitCode.LEDGER_UNSOUND
    assert broken.json()["ok"] is False  # the report on stdout, the error on stderr
    assert broken.error_json()["error"] == "audit_log_broken"
    assert f"records up to {newest} were seen before" in broken.error_json()["message"]

    tamper(db_url, "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 2")
    altered = admin.run("admin", "audit", "verify")
    assert altered.code == ExitCode.LEDGER_UNSOUND
    assert "record 2 was altered" in altered.stdout
    assert "record 2 was altered" in altered.error_line()


def test_customers_may_not_read_the_audit_log(cli: Cli, db_url: str) -> None:
    phone = new_phone()
    cli.register(phone)
    cli.login(phone)
    denied = cli.fails_json(ExitCode.FORBIDDEN, "admin", "audit", "show")
    assert denied["error"] == "permission_denied"
    records = cli.as_admin().ok_json("admin", "audit", "show", "--limit", "1")
    assert records[0]["action"] == "login.succeeded"  # the admin's own login, after the denial
    denials = [
        record
        for record in cli.as_admin().ok_json("admin", "audit", "show", "--limit", "20")
        if record["action"] == "permission.denied"
    ]
    assert denials[0]["details"]["action"] == "read the audit log"


def test_show_reads_since_a_date_and_refuses_a_bad_one(cli: Cli, db_url: str) -> None:
    seed_user(db_url)
    assert cli.as_admin().ok_json("admin", "audit", "show", "--since", "2000-01-01")
    assert cli.as_admin().ok_json("admin", "audit", "show", "--since", "2999-01-01") == []
    assert "--since" in cli.as_admin().fails(
        ExitCode.USAGE, "admin", "audit", "show", "--since", "soon"
    )
    assert "limit" in cli.as_admin().fails(ExitCode.USAGE, "admin", "audit", "show", "--limit", "0")


@pytest.mark.remote
def test_passwd_changes_the_password_and_ends_the_session(cli: Cli, db_url: str) -> None:
    phone = new_phone()
    cli.register(phone)
    cli.login(phone)

    wrong = cli.fails(
        ExitCode.NOT_AUTHENTICATED, "passwd", "--password-stdin",
        stdin="not-the-password\na brand new passphrase\n",
    )  # fmt: skip
    assert "current password is wrong" in wrong
    weak = cli.fails_json(
        ExitCode.USAGE, "passwd", "--password-stdin",
        stdin="correct-horse-battery\npassword123\n",
    )  # fmt: skip
    assert weak["error"] == "weak_password"
    assert cli.session_file.exists()

    changed = cli.ok_json(
        "passwd", "--password-stdin", stdin="correct-horse-battery\na brand new passphrase\n"
    )
    assert changed == {"changed": True, "logged_out": True}
    assert not cli.session_file.exists()
    cli.fails(ExitCode.NOT_AUTHENTICATED, "balance")
    cli.login(phone, password="a brand new passphrase")
    assert cli.ok_json("whoami")["phone"] == phone


def test_one_anchor_per_database_however_its_url_is_spelled(embedded_cli: Cli) -> None:
    cli = embedded_cli
    cli.register(new_phone())
    admin = cli.as_admin()
    first = admin.ok_json("admin", "audit", "verify")
    assert first["anchored_at"] is None
    # The same file by another spelling of its URL finds the same anchor.
    spelled = f"sqlite:///{cli.home}/./mwallet.db"
    again = admin.ok_json("--db", spelled, "admin", "audit", "verify")
    assert again["anchored_at"] == first["records"]


def test_a_damaged_anchor_file_fails_verify_clearly(embedded_cli: Cli) -> None:
    cli = embedded_cli
    cli.register(new_phone())
    admin = cli.as_admin()
    admin.ok("admin", "audit", "verify")
    (admin.home / "audit-anchor.json").write_text("{not json", encoding="utf-8")
    message = admin.fails(ExitCode.LEDGER_UNSOUND, "admin", "audit", "verify")
    assert "audit anchor file" in message
    # After recreating a database on purpose, its anchor can be dropped.
    (admin.home / "audit-anchor.json").write_text("{}", encoding="utf-8")
    assert admin.ok_json("admin", "audit", "verify", "--forget-anchor")["ok"] is True
