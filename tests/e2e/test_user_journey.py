"""One journey as people run it: the installed `mwallet` command on the embedded SQLite default.

Nothing is set up behind the CLI's back: two people register, one tops up and pays the other,
they each look at their wallet, and the operator proves the books.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ANA = ("+258 84 100 0001", "+258841000001", "Ana Machava", "ana-secret-password")
BRUNO = ("+258 86 200 0002", "+258862000002", "Bruno Tembe", "bruno-secret-password")


class Terminal:
    """A shell with MWALLET_HOME set and nothing else of mwallet's configured."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
        self.env["MWALLET_HOME"] = str(home)
        self.env["COLUMNS"] = "200"
        self.cwd = cwd

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mwallet", *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env,
            cwd=self.cwd,
            timeout=120,  # a safety net for a hung process, not a timing assertion
            check=False,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"mwallet {' '.join(args)}: {done.stderr}"
        assert done.stderr == ""
        return done.stdout

    def ok_json(self, *args: str) -> Any:
        import json

        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    return Terminal(tmp_path / "wallet-home", tmp_path)


def test_two_people_pay_each_other_and_the_books_balance(
    terminal: Terminal, tmp_path: Path
) -> None:
    sh = terminal
    home = tmp_path / "wallet-home"

    assert "USD" in sh.ok("init")
    assert (home / "mwallet.db").is_file()

    for typed, _, name, password in (ANA, BRUNO):
        said = sh.ok(
            "register", "--phone", typed, "--name", name, "--password-stdin", stdin=password
        )
        assert "Registered" in said
        assert name in said

    ana_typed, ana_phone, ana_name, ana_password = ANA
    bruno_typed, bruno_phone, bruno_name, bruno_password = BRUNO
    # Ana also runs the shop: she becomes the first admin.
    assert "first admin" in sh.ok("init", "--admin-phone", ana_typed)

    assert ana_name in sh.ok("login", "--phone", ana_typed, "--password-stdin", stdin=ana_password)
    assert (home / "session.json").is_file()
    assert "150.00 USD" in sh.ok("topup", "150")
    sent = sh.ok("send", "--to", bruno_typed, "42.50", "--note", "rent share")
    assert "42.50 USD" in sent
    assert bruno_phone in sent
    assert "107.50 USD" in sh.ok("balance")
    assert "Logged out" in sh.ok("logout")
    assert not (home / "session.json").exists()
    refused = sh.run("balance")
    assert refused.returncode == 3
    assert refused.stdout == ""
    assert "login" in refused.stderr

    sh.ok("login", "--phone", bruno_phone, "--password-stdin", stdin=bruno_password)
    assert bruno_name in sh.ok("whoami")
    wallet = sh.ok_json("balance")
    assert (wallet["phone"], wallet["balance"], wallet["currency"]) == (bruno_phone, "42.50", "USD")
    (received,) = sh.ok_json("history")["movements"]
    assert received["type"] == "transfer_in"
    assert (received["amount"], received["balance_after"]) == ("42.50", "42.50")
    assert (received["counterparty"], received["note"]) == (ana_phone, "rent share")
    table = sh.ok("history")
    assert ana_phone in table
    assert "rent share" in table

    denied = sh.run("admin", "ledger", "verify")  # Bruno is a customer
    assert denied.returncode == 9
    assert "may not" in denied.stderr

    sh.ok("logout")
    sh.ok("login", "--phone", ana_typed, "--password-stdin", stdin=ana_password)
    assert "admin" in sh.ok("whoami")
    assert "The ledger is sound" in sh.ok("admin", "ledger", "verify")
    books = sh.ok_json("admin", "ledger", "verify")
    assert books["ok"] is True
    assert (books["accounts"], books["entries"], books["postings"]) == (
        13,
        2,
        4,
    )  # two wallets, two funding sources, the holds, the fees, 7 sandbox billers' payables
