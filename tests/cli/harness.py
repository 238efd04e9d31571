"""Running `python -m mwallet` as a person or a script does, and reading the database behind it.

Every command runs in a process of its own through the real console entry (`mwallet.cli.main.run`),
with its own environment, working folder, stdin, stdout and stderr (files, not a terminal), so the
exit codes, the stderr line and the stdout document are exactly what a shell sees. The process is
forked from the test's, which has imported mwallet already: a command then costs milliseconds
instead of a second of interpreter start-up and imports, and runs from a clean copy of a process
that has run no command (each child ends with `os._exit`, so nothing it did comes back).
`MWALLET_TEST_SUBPROCESS=1` runs `python -m mwallet` in a new interpreter instead. Setting up
people and money that a test is not about goes through the service in-process: it is much cheaper
and the CLI then reads the same database.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from mwallet.core.domain.users import Principal
from tests.support import PASSWORD, TEST_KEY, make_admin, new_phone, open_wallet, register

# What makes a CLI remote (`tests/cli/conftest.py`): an admin works on the database itself.
REMOTE_ONLY = frozenset({"MWALLET_SERVER", "MWALLET_DB"})
# A runaway CLI must not hang the suite; this is a safety net, not a timing assertion.
_SUBPROCESS_TIMEOUT_S = 120


@dataclass(frozen=True)
class Outcome:
    """What one `mwallet …` run left behind."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The one JSON document on stdout (fails if stdout holds anything else)."""
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """The single stderr line a failed command must leave, never a traceback."""
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1, f"`mwallet {' '.join(self.args)}`: stderr is not one line:\n" + (
            self.stderr
        )
        assert self.stderr.endswith("\n")
        return lines[0]

    def error_json(self) -> dict[str, str]:
        """The one-line JSON object a failed `--json` command leaves on stderr."""
        document = json.loads(self.error_line())
        assert isinstance(document, dict)
        assert set(document) == {"error", "message"}, document
        assert all(isinstance(value, str) and value for value in document.values()), document
        return document


def _forked(args: tuple[str, ...], stdin: str, env: dict[str, str], cwd: Path) -> Outcome:
    """Run `mwallet *args` in a child forked from this process; its exit code and outputs."""
    import signal
    import time

    with tempfile.TemporaryDirectory(prefix="mwallet-cli-") as scratch:
        paths = [Path(scratch) / name for name in ("stdin", "stdout", "stderr")]
        paths[0].write_text(stdin, encoding="utf-8")
        pid = os.fork()
        if pid == 0:  # the child: become `mwallet *args` with these files as 0, 1 and 2
            code = 1
            try:
                for fd, path, mode in zip((0, 1, 2), paths, ("r", "w", "w"), strict=True):
                    flags = os.O_RDONLY if mode == "r" else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                    opened = os.open(path, flags, 0o600)
                    os.dup2(opened, fd)
                    os.close(opened)
                sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                os.environ.clear()
                os.environ.update(env)
                tempfile.tempdir = None  # found again from this environment's TMPDIR
                os.chdir(cwd)
                sys.argv = ["mwallet", *args]
                from mwallet.cli.main import run

                try:
                    run(list(args))
                    code = 0
                except SystemExit as exit_:
                    code = (
                        exit_.code
                        if isinstance(exit_.code, int)
                        else (0 if exit_.code is None else 1)
                    )
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):  # the child leaves whatever happens
                        stream.flush()
                os._exit(code)
        deadline = time.monotonic() + _SUBPROCESS_TIMEOUT_S
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise TimeoutError(f"`mwallet {' '.join(args)}` ran over {_SUBPROCESS_TIMEOUT_S} s")
            time.sleep(0.002)
        return Outcome(
            args,
            os.waitstatus_to_exitcode(status),
            paths[1].read_text(encoding="utf-8"),
            paths[2].read_text(encoding="utf-8"),
        )


@dataclass
class Cli:
    """`mwallet` bound to one MWALLET_HOME and, unless embedded, one MWALLET_DB."""

    home: Path
    db: str | None
    cwd: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def session_file(self) -> Path:
        return self.home / "session.json"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
        env["MWALLET_HOME"] = str(self.home)
        if self.db is not None:
            env["MWALLET_DB"] = self.db
            # Every CLI home on a shared database shares its data key, as a deployment must; the
            # in-process set-up seals with the same key. Embedded homes use their key file.
            env["MWALLET_SECRET_KEY"] = base64.b64encode(TEST_KEY).decode()
        env["COLUMNS"] = "200"  # Rich tables on one line each, so a phone number is not wrapped
        env.update(self.extra_env)
        return env

    def run(self, *args: str, stdin: str | None = None) -> Outcome:
        if os.environ.get("MWALLET_TEST_SUBPROCESS") or not hasattr(os, "fork"):
            return self.run_interpreter(*args, stdin=stdin)
        return _forked(args, stdin or "", self.environment(), self.cwd)

    def run_interpreter(self, *args: str, stdin: str | None = None) -> Outcome:
        """`python -m mwallet …` in a new interpreter, as a shell runs it."""
        completed = subprocess.run(
            [sys.executable, "-m", "mwallet", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.environment(),
            cwd=self.cwd,
            timeout=_SUBPROCESS_TIMEOUT_S,
            check=False,
        )
        return Outcome(tuple(args), completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str, stdin: str | None = None) -> Outcome:
        """Run a command that must succeed quietly on stderr."""
        outcome = self.run(*args, stdin=stdin)
        assert outcome.code == 0, (
            f"`mwallet {' '.join(args)}` exited {outcome.code}: {outcome.stderr}"
        )
        assert outcome.stderr == ""
        return outcome

    def ok_json(self, *args: str, stdin: str | None = None) -> Any:
        """Run a command with `--json`: exactly one JSON document on stdout."""
        return self.ok(*args, "--json", stdin=stdin).json()

    def fails(self, code: int, *args: str, stdin: str | None = None) -> str:
        """Run a command that must fail with `code`, print nothing on stdout, one line on stderr."""
        outcome = self.run(*args, stdin=stdin)
        assert outcome.code == code, (
            f"`mwallet {' '.join(args)}` exited {outcome.code}, not {code}: {outcome.stderr}"
        )
        assert outcome.stdout == ""
        line = outcome.error_line()
        assert line.startswith("error: "), line
        return line

    def fails_json(self, code: int, *args: str, stdin: str | None = None) -> dict[str, str]:
        """Like `fails` with `--json`: the stderr line is a JSON object {"error", "message"}."""
        outcome = self.run(*args, "--json", stdin=stdin)
        assert outcome.code == code, (
            f"`mwallet {' '.join(args)} --json` exited {outcome.code}, not {code}: {outcome.stderr}"
        )
        assert outcome.stdout == ""
        return outcome.error_json()

    def register(self, phone: str, name: str = "Test User", password: str = PASSWORD) -> Any:
        return self.ok_json(
            "register", "--phone", phone, "--name", name, "--password-stdin", stdin=password + "\n"
        )

    def login(self, phone: str, password: str = PASSWORD) -> Any:
        return self.ok_json("login", "--phone", phone, "--password-stdin", stdin=password + "\n")

    def as_admin(self, *, same_door: bool = False) -> Cli:
        """The same database, as an admin logged in from a home of their own: on the database
        itself, or (`same_door`) through this CLI's server when it is remote."""
        url = self.db or f"sqlite:///{self.home / 'mwallet.db'}"
        local = {k: v for k, v in self.extra_env.items() if k not in REMOTE_ONLY}
        admin = Cli(
            home=self.home.parent / f"{self.home.name}-admin{'-door' if same_door else ''}",
            db=url, cwd=self.cwd, extra_env=self.extra_env if same_door else local,
        )  # fmt: skip
        if not admin.session_file.exists():
            phone = new_phone()
            with open_wallet(url) as wallet:
                make_admin(wallet.service, phone)
            admin.login(phone)
        return admin

    def balance(self) -> str:
        document = self.ok_json("balance")
        assert isinstance(document["balance"], str)
        return document["balance"]


# --- the database behind the CLI's back ----------------------------------------------------------
def seed_user(
    url: str, phone: str | None = None, *, name: str = "Test User", funds: str = ""
) -> Principal:
    """Register someone (password `PASSWORD`) and top them up with `funds`, in-process."""
    with open_wallet(url) as wallet:
        service = wallet.service
        principal = register(service, phone, name)
        if funds:
            service.topup(
                principal,
                amount=service.parse_money(funds),
                source="sandbox",
                idempotency_key=f"seed-{uuid.uuid4().hex}",
            )
        return principal


def seed_transfer(url: str, sender: Principal, to: Principal, amount: str, note: str | None) -> str:
    with open_wallet(url) as wallet:
        service = wallet.service
        done = service.transfer(
            sender,
            to_phone=to.phone,
            amount=service.parse_money(amount),
            note=note,
            idempotency_key=f"seed-{uuid.uuid4().hex}",
        )
        return done.id


def balance_of(url: str, principal: Principal) -> str:
    with open_wallet(url) as wallet:
        return wallet.service.balance(principal).balance.to_decimal_string()


def count_rows(url: str, table: str) -> int:
    with open_wallet(url) as wallet, wallet.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def tamper(url: str, statement: str) -> int:
    """Change the database with the backend's own driver, as an intruder or a bad script would.

    Returns how many rows the statement changed.
    """
    if url.startswith("sqlite:///"):
        raw = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            changed = raw.execute(statement).rowcount
            raw.commit()
        finally:
            raw.close()
        return changed
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(statement).rowcount
