"""What only the remote CLI does (`mwallet --server URL`): log in by the device grant while the
person approves on the server's page, keep a session per server, refuse the operators' commands,
and say so plainly when the server cannot be reached. (The everyday commands' scenarios run
remotely too: the tests marked `remote` in the other modules.)"""

from __future__ import annotations

import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli, Outcome, seed_user
from tests.support import PASSWORD, open_wallet

pytestmark = pytest.mark.parametrize("door", ["remote"], indirect=True)


def pending_user_code(url: str) -> str | None:
    """The code the CLI shows, read off the database as the person reads it off the screen."""
    with open_wallet(url) as wallet, wallet.engine.connect() as conn:
        found = conn.execute(
            text("SELECT user_code FROM device_grants WHERE state = 'pending'")
        ).scalar_one_or_none()
    return None if found is None else str(found)


def in_background(cli: Cli, *args: str) -> Future[Outcome]:
    pool = ThreadPoolExecutor(max_workers=1)
    done = pool.submit(cli.run, *args)
    pool.shutdown(wait=False)
    return done


def wait_for_code(url: str, running: Future[Outcome]) -> str:
    deadline = time.monotonic() + 60  # a safety net, not a timing assertion
    while (code := pending_user_code(url)) is None:
        assert not running.done(), running.result()
        assert time.monotonic() < deadline, "the CLI never asked for a device grant"
        time.sleep(0.05)
    return code


def test_login_by_the_device_grant_while_the_person_approves(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="25")
    server = cli.extra_env["MWALLET_SERVER"]
    on_the_server = Cli(home=cli.home, db=None, cwd=cli.cwd)  # `mwallet login --server URL`
    running = in_background(on_the_server, "login", "--server", server + "/", "--json")
    code = wait_for_code(db_url, running)
    page = httpx.get(f"{server}/device", params={"user_code": code})
    assert page.status_code == 200
    approved = httpx.post(f"{server}/device", data={"user_code": code, "phone": ana.phone,
                                                    "password": PASSWORD})  # fmt: skip
    assert approved.status_code == 200, approved.text
    done = running.result(timeout=120)
    assert done.code == 0, done.stderr
    shown = f"{code[:4]}-{code[4:]}"
    assert f"{server}/device" in done.stderr
    assert shown in done.stderr
    session = done.json()
    assert (session["user_id"], session["phone"]) == (ana.user_id, ana.phone)
    assert cli.ok_json("balance")["balance"] == "25.00"
    assert "Ana Machava" in cli.ok("whoami").stdout

    # The session belongs to that server: not to the local database, nor to another server.
    local = Cli(home=cli.home, db=db_url, cwd=cli.cwd)
    assert f"your session is for {server}" in local.fails(ExitCode.NOT_AUTHENTICATED, "balance")
    other_server = {**cli.extra_env, "MWALLET_SERVER": "http://127.0.0.1:9"}
    elsewhere = Cli(home=cli.home, db=None, cwd=cli.cwd, extra_env=other_server)
    assert "mwallet login" in elsewhere.fails(ExitCode.NOT_AUTHENTICATED, "whoami")
    assert cli.ok_json("logout") == {"logged_out": True}
    assert "mwallet login" in cli.fails(ExitCode.NOT_AUTHENTICATED, "balance")


def test_a_refused_device_login_fails_like_a_refused_password(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url)
    server = cli.extra_env["MWALLET_SERVER"]
    running = in_background(cli, "login")
    code = wait_for_code(db_url, running)
    httpx.post(f"{server}/device", data={"user_code": code, "phone": ana.phone,
                                         "password": PASSWORD, "action": "deny"})  # fmt: skip
    done = running.result(timeout=120)
    assert done.code == ExitCode.NOT_AUTHENTICATED
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == "error: the login was refused on the verification page"
    assert not cli.session_file.exists()


def test_what_the_remote_cli_refuses(cli: Cli, db_url: str, tmp_path: Path) -> None:
    ana = seed_user(db_url)
    # A password login names the phone; the operators' commands work on a database only.
    assert "--phone" in cli.fails(ExitCode.USAGE, "login", "--password-stdin", stdin=PASSWORD)
    cli.login(ana.phone)
    local_only = [("admin", "users", "list"), ("init",), ("admin", "audit", "show"),
                  ("notify", "relay", "--once")]  # fmt: skip
    for command in local_only:
        line = cli.fails(ExitCode.USAGE, *command)
        assert "local database only" in line, line
    assert cli.fails_json(ExitCode.USAGE, "admin", "ledger", "verify")["error"] == "local_only"

    # No server there: one line, the configuration exit code.
    url = nobody_listening()
    gone = Cli(home=tmp_path / "elsewhere", db=None, cwd=tmp_path,
               extra_env={"MWALLET_SERVER": url})  # fmt: skip
    line = gone.fails(ExitCode.CONFIGURATION, "register", "--phone", ana.phone, "--name", "X",
                      "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert f"cannot reach the server {url}" in line


def nobody_listening() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_the_same_commands_print_the_same_on_both_doors(cli: Cli, db_url: str) -> None:
    """Read-only commands on one database, through the server and straight from the database:
    the same stdout, byte for byte (the other scenarios compare documents and error lines)."""
    ana = seed_user(db_url, name="Ana Machava", funds="300")
    local = Cli(home=cli.home.parent / "local-home", db=db_url, cwd=cli.cwd)
    for door in (cli, local):
        door.login(ana.phone)
    cli.ok("pay", "airtime", "20", "--yes")
    cli.ok("withdraw", "40", "--yes")
    cli.ok("send", "--to", seed_user(db_url).phone, "5", "--yes")
    reads = [("limits",), ("billers",), ("payments",), ("withdrawals",),
             ("inbox",), ("2fa", "status"), ("fees", "transfer", "5"), ("fees",),
             ("notify", "prefs"), ("history",),
             ("history", "--limit", "2", "--type", "fee,airtime"),
             ("report", "trends", "--months", "2", "--period", "week")]  # fmt: skip
    for args in reads:
        for shown in (args, (*args, "--json")):
            there, here = cli.ok(*shown), local.ok(*shown)
            if args[0] == "report" and "--json" in shown:  # made at a second of its own
                there_doc, here_doc = there.json(), here.json()
                assert {**there_doc, "generated_at": None} == {**here_doc, "generated_at": None}
                continue
            assert there.stdout == here.stdout, shown
    # Not in the loop above: a statement has no --json; a statistics document has the second it
    # was made (`generated_at`).
    ever = ("--from", "2000-01-01", "--to", "2999-12-31")
    for shown in (("history", "--csv"), ("statement", *ever), ("report", "stats"),
                  ("statement", *ever, "--format", "json")):  # fmt: skip
        there = cli.ok(*shown)
        assert there.stdout == local.ok(*shown).stdout, shown
    statement = there.json()
    assert [line["type"] for line in statement["movements"]] == [
        "topup", "airtime", "withdrawal", "transfer_out",
    ]  # fmt: skip
    assert (statement["count"], statement["closing_balance"]) == (4, "235.00")
    stats, local_stats = cli.ok_json("report", "stats"), local.ok_json("report", "stats")
    assert {**stats, "generated_at": None} == {**local_stats, "generated_at": None}
    payment = cli.ok_json("payments")[0]["id"]
    shown = ("payments", "show", payment)
    assert cli.ok(*shown).stdout == local.ok(*shown).stdout


def test_a_device_login_sends_the_device_id_as_a_password_login_does(cli: Cli, db_url: str) -> None:
    """The device grant's login is from this home's device: known after a password login from
    the same home (no notice), new from another home (a notice), and its id kept for later."""
    ana = seed_user(db_url, name="Ana Machava")
    server = cli.extra_env["MWALLET_SERVER"]
    cli.login(ana.phone)  # a password login: this home's device is Ana's first

    def approved_device_login(home: Path) -> None:
        device = Cli(home=home, db=None, cwd=cli.cwd)
        running = in_background(device, "login", "--server", server, "--json")
        code = wait_for_code(db_url, running)
        answer = httpx.post(f"{server}/device", data={"user_code": code, "phone": ana.phone,
                                                      "password": PASSWORD})  # fmt: skip
        assert answer.status_code == 200, answer.text
        done = running.result(timeout=120)
        assert done.code == 0, done.stderr

    def notices() -> int:
        return sum(one["kind"] == "login_new_device" for one in cli.ok_json("inbox"))

    approved_device_login(cli.home)
    assert notices() == 0
    elsewhere = cli.home.parent / "tablet"
    approved_device_login(elsewhere)
    assert notices() == 1
    tablet = Cli(home=elsewhere, db=None, cwd=cli.cwd, extra_env=cli.extra_env)
    tablet.login(ana.phone)  # the id the device login kept: the same device now
    assert notices() == 1
    assert (elsewhere / "device.id").read_text("ascii").strip()
