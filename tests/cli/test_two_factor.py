"""`mwallet 2fa …`, `login --code` and step-up on `send --code`, through the real entry point.

The CLI checks codes against the real clock, so the tests compute codes from it too. A TOTP
time-step is accepted once per user and only within ±1 step of now: `Authenticator` hands out
codes of steps that are still unused and that the subprocess, started a moment later, accepts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from mwallet.cli.exit_codes import ExitCode
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.domain.users import Principal
from tests.cli.harness import Cli, balance_of, seed_user
from tests.support import PASSWORD, open_wallet

NOT_AUTHENTICATED = ExitCode.NOT_AUTHENTICATED
USAGE = ExitCode.USAGE
REFUSED = ExitCode.REFUSED
FORBIDDEN = ExitCode.FORBIDDEN

PASSWORD_LINE = PASSWORD + "\n"
# A code of the step before the current one is handed out only while the current step has at
# least this long to run: enough for a subprocess to start and check it.
_MARGIN_S = 10.0


@dataclass
class Authenticator:
    """The test's authenticator app for one secret; remembers the last time-step it used."""

    secret: str
    last_step: int | None = None

    def code(self) -> str:
        """A code of an unused step that the wallet accepts for the next few seconds."""
        while True:
            now = time.time()
            current = otp.time_step(datetime.fromtimestamp(now, UTC))
            left_in_step = (current + 1) * otp.STEP_SECONDS - now
            earliest = current - 1 if left_in_step > _MARGIN_S else current
            step = earliest if self.last_step is None else max(earliest, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                return otp.code_at_step(self.secret, step)
            time.sleep(left_in_step + 0.5)  # every usable step is spent: wait for the next one

    def wrong_code(self) -> str:
        """Six digits that are no code of any step near now."""
        current = otp.time_step(datetime.now(UTC))
        near = {otp.code_at_step(self.secret, step) for step in range(current - 3, current + 4)}
        return next(code for code in ("000000", "123456", "999999") if code not in near)


def enable_in_process(url: str, principal: Principal) -> Authenticator:
    """Turn 2FA on for `principal` without the CLI, with a code of five minutes ago (so every
    step from now on is still unused for the CLI)."""
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    with open_wallet(url, FixedClock(earlier)) as wallet:
        service = wallet.service
        enrollment = service.begin_two_factor(principal)
        step = otp.time_step(earlier)
        service.confirm_two_factor(principal, code=otp.code_at_step(enrollment.secret, step))
    return Authenticator(enrollment.secret, last_step=step)


def _login(phone: str, *extra: str) -> tuple[str, ...]:
    return ("login", "--phone", phone, "--password-stdin", *extra)


# --- 2fa enable / confirm / status ---------------------------------------------------------------
@pytest.mark.remote
def test_enrolment_shows_a_qr_code_then_a_first_code_turns_2fa_on(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    cli.login(ana.phone)
    assert cli.ok_json("2fa", "status") == {
        "enabled": False,
        "pending": False,
        "recovery_codes_left": 0,
        "step_up_amount": "1000.00",
    }

    # No terminal: the QR code and the secret, and what to run next (no prompt for a code).
    shown = cli.ok("2fa", "enable").stdout
    assert "█" in shown
    assert "▀" in shown or "▄" in shown
    assert "mwallet 2fa confirm CODE" in shown
    match = re.search(r"Secret: ([A-Z2-7]{32})\b", shown)
    assert match is not None, shown
    first_secret = match.group(1)
    assert cli.ok_json("2fa", "status")["pending"] is True

    # Enrolling again starts over with a new secret: the first one's codes no longer confirm.
    enrollment = cli.ok_json("2fa", "enable")
    assert set(enrollment) == {"secret", "uri", "next"}
    secret = enrollment["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert secret != first_secret
    assert enrollment["uri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in enrollment["uri"]
    assert "issuer=mwallet" in enrollment["uri"]
    app = Authenticator(secret)

    stale = Authenticator(first_secret).code()
    line = cli.fails(NOT_AUTHENTICATED, "2fa", "confirm", stale)
    assert "not the code your authenticator shows" in line
    wrong = cli.fails_json(NOT_AUTHENTICATED, "2fa", "confirm", app.wrong_code())
    assert wrong["error"] == "invalid_second_factor"
    assert cli.ok_json("2fa", "status")["enabled"] is False

    confirmed = cli.ok_json("2fa", "confirm", app.code())
    assert confirmed["enabled"] is True
    codes = confirmed["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code) for code in codes)
    assert cli.ok_json("2fa", "status") == {
        "enabled": True,
        "pending": False,
        "recovery_codes_left": 10,
        "step_up_amount": "1000.00",
    }
    assert "recovery codes left" in cli.ok("2fa", "status").stdout

    # On already: neither enrolment nor confirmation can start over.
    assert cli.fails_json(REFUSED, "2fa", "enable")["error"] == "two_factor_already_on"
    assert "already on" in cli.fails(REFUSED, "2fa", "confirm", app.code())
    # Not logged in: exit 3 before anything else.
    cli.ok("logout")
    assert cli.fails_json(NOT_AUTHENTICATED, "2fa", "status")["error"] == "not_authenticated"
    cli.fails(NOT_AUTHENTICATED, "2fa", "enable")


@pytest.mark.remote
def test_confirm_and_disable_without_an_enrolment_are_refused(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url)
    cli.login(ana.phone)
    assert "2fa enable" in cli.fails(REFUSED, "2fa", "confirm", "123456")
    assert cli.fails_json(REFUSED, "2fa", "disable", "123456")["error"] == "two_factor_not_on"
    assert "Missing argument" in cli.fails(USAGE, "2fa", "confirm")
    assert "off" in cli.ok("2fa", "status").stdout


# --- login --code, and 2fa disable ---------------------------------------------------------------
@pytest.mark.remote
def test_login_takes_a_fresh_code_or_a_recovery_code_and_disable_needs_one(
    cli: Cli, db_url: str
) -> None:
    ana = seed_user(db_url)
    app = enable_in_process(db_url, ana)

    line = cli.fails(NOT_AUTHENTICATED, *_login(ana.phone), stdin=PASSWORD_LINE)
    assert "two-factor" in line
    needed = cli.fails_json(NOT_AUTHENTICATED, *_login(ana.phone), stdin=PASSWORD_LINE)
    assert needed["error"] == "second_factor_required"
    assert not cli.session_file.exists()
    # The password is still checked first: a wrong one with any code is the usual refusal.
    wrong_password = cli.fails_json(
        NOT_AUTHENTICATED, *_login(ana.phone, "--code", app.wrong_code()), stdin="nope-nope-1\n"
    )
    assert wrong_password["error"] == "invalid_credentials"

    code = app.code()
    assert cli.ok_json(*_login(ana.phone, "--code", code), stdin=PASSWORD_LINE)["phone"] == (
        ana.phone
    )
    assert cli.ok_json("whoami")["phone"] == ana.phone
    # The same code again: already used, however fresh.
    replayed = cli.fails_json(
        NOT_AUTHENTICATED, *_login(ana.phone, "--code", code), stdin=PASSWORD_LINE
    )
    assert replayed == {
        "error": "invalid_second_factor",
        "message": "wrong or already used two-factor code",
    }

    # Off with a wrong code: refused, still on. Off with a fresh code: off.
    assert "wrong or already used" in cli.fails(NOT_AUTHENTICATED, "2fa", "disable", "12345")
    assert cli.fails_json(NOT_AUTHENTICATED, "2fa", "disable", app.wrong_code())["error"] == (
        "invalid_second_factor"
    )
    assert cli.ok_json("2fa", "status")["enabled"] is True
    assert cli.ok_json("2fa", "disable", app.code()) == {"enabled": False}
    assert cli.ok_json("2fa", "status")["enabled"] is False
    assert "not on" in cli.fails(REFUSED, "2fa", "disable", "123456")

    # On again through the CLI, for recovery codes: each one logs in once.
    secret = cli.ok_json("2fa", "enable")["secret"]
    app = Authenticator(secret)
    recovery = cli.ok_json("2fa", "confirm", app.code())["recovery_codes"]
    assert cli.ok_json(*_login(ana.phone, "--code", recovery[0]), stdin=PASSWORD_LINE)
    spent = cli.fails_json(
        NOT_AUTHENTICATED, *_login(ana.phone, "--code", recovery[0]), stdin=PASSWORD_LINE
    )
    assert spent["error"] == "invalid_second_factor"
    # Typed in capitals and without dashes, a recovery code is the same code.
    typed = recovery[1].replace("-", "").upper()
    cli.ok("login", "--phone", ana.phone, "--password-stdin", "--code", typed, stdin=PASSWORD_LINE)
    assert cli.ok_json("2fa", "status")["recovery_codes_left"] == 8
    # A recovery code turns 2FA off too; then a login needs no code.
    assert "off" in cli.ok("2fa", "disable", recovery[2]).stdout
    cli.login(ana.phone)


# --- step-up: large amounts need a fresh code ----------------------------------------------------
def test_step_up_asks_for_a_code_at_and_above_the_amount(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    assert admin.ok_json("admin", "limits", "step-up") == {"step_up_amount": "1000.00"}
    assert admin.ok_json("admin", "limits", "step-up", "50") == {"step_up_amount": "50.00"}
    assert "50.00" in admin.ok("admin", "limits", "step-up").stdout
    assert "abc" in admin.fails(USAGE, "admin", "limits", "step-up", "abc")
    assert admin.fails_json(USAGE, "admin", "limits", "step-up", "0")["error"] == "invalid_amount"
    assert admin.ok_json("admin", "limits", "step-up") == {"step_up_amount": "50.00"}

    ana = seed_user(db_url, funds="500")
    bob = seed_user(db_url)
    app = enable_in_process(db_url, ana)
    cli.ok_json(*_login(ana.phone, "--code", app.code()), stdin=PASSWORD_LINE)
    denied = cli.fails_json(FORBIDDEN, "admin", "limits", "step-up", "10")
    assert denied["error"] == "permission_denied"
    assert cli.ok_json("2fa", "status")["step_up_amount"] == "50.00"

    send = ("send", "60", "--to", bob.phone)
    assert "--code" in cli.fails(NOT_AUTHENTICATED, *send)
    assert cli.fails_json(NOT_AUTHENTICATED, *send)["error"] == "second_factor_required"
    wrong = cli.fails_json(NOT_AUTHENTICATED, *send, "--code", app.wrong_code())
    assert wrong["error"] == "invalid_second_factor"
    # Exactly the amount needs a code too.
    cli.fails(NOT_AUTHENTICATED, "send", "50", "--to", bob.phone)
    assert balance_of(db_url, ana) == "500.00"
    assert balance_of(db_url, bob) == "0.00"

    code = app.code()
    sent = cli.ok_json(*send, "--code", code)
    assert (sent["amount"], sent["from"], sent["to"]) == ("60.00", ana.phone, bob.phone)
    # The code is used up: the same one does not move money twice.
    assert cli.fails_json(NOT_AUTHENTICATED, *send, "--code", code)["error"] == (
        "invalid_second_factor"
    )
    assert cli.ok_json("send", "49.99", "--to", bob.phone)["amount"] == "49.99"
    assert balance_of(db_url, ana) == "390.01"
    assert balance_of(db_url, bob) == "109.99"

    # Without 2FA no code is asked for, whatever the amount.
    cli.login(bob.phone)
    assert cli.ok_json("send", "100", "--to", ana.phone)["amount"] == "100.00"
    assert balance_of(db_url, ana) == "490.01"
