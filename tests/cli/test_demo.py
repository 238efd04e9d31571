"""`mwallet demo`: a whole run on a throwaway database that touches neither the home nor the DB."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.cli.harness import Cli

# The demo must not even try the configured database: this one cannot be reached.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cli = Cli(
        home=tmp_path / "home", db=UNREACHABLE, cwd=tmp_path, extra_env={"TMPDIR": str(scratch)}
    )

    shown = cli.ok("demo").stdout
    assert "The ledger is sound" in shown
    assert "refused" in shown
    assert "Ana Machava" in shown
    assert not cli.home.exists()
    assert list(scratch.iterdir()) == []

    summary = cli.ok_json("demo", "--keep")
    assert summary["ledger"]["ok"] is True
    assert summary["ledger"]["problems"] == []
    assert len(summary["refusals"]) >= 1
    # A refused transfer sent again with its key gets the first refusal back.
    first, again = (
        next(one for one in summary["refusals"] if one["attempt"].startswith(start))
        for start in ("Carla tries to send 500.00", "Carla's phone resends")
    )
    assert (again["error"], again["message"]) == (first["error"], first["message"])
    assert first["error"] == "insufficient_funds"
    assert summary["replayed_transfer_id"] == summary["transfers"][0]["id"]
    balances = {user["phone"]: user["balance"] for user in summary["users"]}
    assert sum(Decimal(amount) for amount in balances.values()) == Decimal("150")  # the top-up
    # 2FA enrolment, a refused unauthorized action, and the other authentication rules at work.
    assert summary["two_factor"] == {
        "enabled": True,
        "recovery_codes": 10,
        "secret_in_plain_text": False,
    }
    assert summary["two_factor_refusals"] == {
        "without_code": "second_factor_required",
        "replayed_code": "invalid_second_factor",
        "step_up_without_code": "second_factor_required",
    }
    assert summary["token_refusals"] == {
        "refresh_reused": "refresh_token_reused",
        "session_after_reuse": "session_expired",
        "atm_transfer": "permission_denied",
    }
    assert summary["step_up_transfer"]["amount"] == "60.00"
    assert summary["signing_keys"] == 2
    # Cash: an exact dispense plan at the ATM, a wrong PIN counted, an agent, a cancellation.
    assert summary["withdrawal"] == {
        "state": "completed",
        "notes": {"2000": 3},
        "wrong_pin": "wrong_pin",
        "qr_payload_prefix": "MW1:",
        "fee": "0.50",
    }
    assert summary["agent_withdrawal"] == "completed"
    assert summary["cancelled_withdrawal"] == "cancelled"
    # Bills: paid; a typo caught by the check digit; a timeout held, then reconciled.
    assert summary["bills"] == {
        "card_topup": "succeeded",
        "water": "succeeded",
        "airtime": "succeeded",
        "typo": "invalid_input",
        "timed_out": "unknown",
        "reconciled": "succeeded",
        "reconciliation": [1, 0, 0],
    }
    # The same wallet over HTTP: a transfer, its replay answered the same, a float refused, and
    # a page of the reports service's history (three movements, with more behind the cursor).
    assert summary["http"] == {
        "transfer": 201,
        "replay_same": True,
        "float_refused": 422,
        "report_page": 3,
    }
    # A jammed dispenser reverses; the day's figures, as the terminal app's screens show them.
    assert summary["jammed_withdrawal"] == "cash_not_dispensed"
    assert summary["agent_day"] == {"float": "60.25", "cash_in_count": 1, "paid_out_count": 1}
    # 20 x 50 + 40 x 20 loaded, three 20s paid out.
    assert summary["atm_day"] == {"cash": "1740.00", "paid_out_count": 1, "reversed_count": 1}
    assert summary["denied"] == "permission_denied"
    # It ends with a report: Ana's month, and a trial balance that sums to zero and matches.
    assert summary["report"]["trial_balance"] == {
        "totals": {"USD": "0.00"},
        "balanced": True,
        "matches_postings": True,
    }
    month = summary["report"]["stats"]
    assert month["period"] == "month"
    assert month["in"]["total"]["count"] >= 1
    assert month["out"]["total"]["count"] >= 1
    assert "sum to 0.00 USD (zero)" in shown
    (kept,) = scratch.iterdir()
    assert summary["kept_in"] == str(kept)
    assert (kept / "mwallet.db").is_file()
    assert (kept / "data.key").stat().st_mode & 0o077 == 0
    assert not cli.home.exists()
