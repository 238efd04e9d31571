"""`mwallet admin audit show|verify` and the login lockout, through the real entry point."""

from __future__ import annotations

import stat

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli, seed_user, tamper
from tests.support import new_phone


def test_a_locked_number_is_refused_with_exit_3_and_the_attempts_are_on_record(
    cli: Cli, db_url: str
) -> None:
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

    records = cli.ok_json("admin", "audit", "show", "--limit", "3")
    assert [record["action"] for record in records] == [
        "login.refused_locked",
        "login.locked",
        "login.failed",
    ]
    assert records[2]["details"] == {"failures": 5}
    assert all(record["subject"] == phone for record in records)


def test_verify_anchors_the_chain_and_finds_tampering(cli: Cli, db_url: str) -> None:
    seed_user(db_url)
    seed_user(db_url)

    assert "The audit log is intact" in cli.ok("admin", "audit", "verify").stdout
    anchor = cli.home / "audit-anchor.json"
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert cli.ok_json("admin", "audit", "verify") == {
        "ok": True,
        "records": 4,
        "problem": None,
        "anchored_at": 4,
    }

    # Someone removes the newest record and moves the head back: a whole but shorter chain.
    tamper(db_url, "DELETE FROM audit_log WHERE seq = 4")
    tamper(
        db_url, "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3)"
    )
    broken = cli.run("admin", "audit", "verify", "--json")
    assert broken.code == ExitCode.LEDGER_UNSOUND
    assert broken.json()["ok"] is False  # the report on stdout, the error on stderr
    assert broken.error_json()["error"] == "audit_log_broken"
    assert "records up to 4 were seen before" in broken.error_json()["message"]

    tamper(db_url, "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 2")
    altered = cli.run("admin", "audit", "verify")
    assert altered.code == ExitCode.LEDGER_UNSOUND
    assert "record 2 was altered" in altered.stdout
    assert "record 2 was altered" in altered.error_line()


def test_show_reads_since_a_date_and_refuses_a_bad_one(cli: Cli, db_url: str) -> None:
    seed_user(db_url)
    assert cli.ok_json("admin", "audit", "show", "--since", "2000-01-01")
    assert cli.ok_json("admin", "audit", "show", "--since", "2999-01-01") == []
    assert "--since" in cli.fails(ExitCode.USAGE, "admin", "audit", "show", "--since", "soon")
    assert "limit" in cli.fails(ExitCode.USAGE, "admin", "audit", "show", "--limit", "0")


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
    assert cli.ok_json("admin", "audit", "verify")["anchored_at"] is None
    # The same file by another spelling of its URL finds the same anchor.
    database = cli.home / "mwallet.db"
    spelled = f"sqlite:///{cli.home}/./mwallet.db"
    assert database.exists()
    assert cli.ok_json("--db", spelled, "admin", "audit", "verify")["anchored_at"] == 1


def test_a_damaged_anchor_file_fails_verify_clearly(embedded_cli: Cli) -> None:
    cli = embedded_cli
    cli.register(new_phone())
    cli.ok("admin", "audit", "verify")
    (cli.home / "audit-anchor.json").write_text("{not json", encoding="utf-8")
    message = cli.fails(ExitCode.LEDGER_UNSOUND, "admin", "audit", "verify")
    assert "audit anchor file" in message
    # After recreating a database on purpose, its anchor can be dropped.
    (cli.home / "audit-anchor.json").write_text("{}", encoding="utf-8")
    assert cli.ok_json("admin", "audit", "verify", "--forget-anchor")["ok"] is True
