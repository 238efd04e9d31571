"""The one mapping from the core's errors to exit codes, and the retry hint for money movements."""

from __future__ import annotations

import json

import pytest

from mwallet.cli.exit_codes import Exit, ExitCode, errors_to_exit_codes, report, retry_hint
from mwallet.core.errors import (
    AmountTooLarge,
    ConcurrencyConflict,
    DatabaseBusy,
    InsufficientFunds,
    SessionExpired,
    StorageUnavailable,
    UserNotFound,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AmountTooLarge("too much"), ExitCode.USAGE),
        (SessionExpired("log in"), ExitCode.NOT_AUTHENTICATED),
        (InsufficientFunds("poor"), ExitCode.REFUSED),
        (UserNotFound("who"), ExitCode.NOT_FOUND),
        (ConcurrencyConflict("race"), ExitCode.CONFLICT),
        (DatabaseBusy("busy"), ExitCode.CONFLICT),
        (StorageUnavailable("down"), ExitCode.CONFIGURATION),
    ],
)
def test_each_family_of_errors_has_its_exit_code(error: Exception, code: ExitCode) -> None:
    with pytest.raises(Exit) as caught, errors_to_exit_codes():
        raise error
    assert caught.value.code == code


def test_an_unknown_outcome_names_the_key_to_retry_with(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as caught, retry_hint("cli-abc"):
        raise StorageUnavailable("the database cannot be used: connection reset")
    assert caught.value.retry_key == "cli-abc"

    assert report(caught.value, as_json=False) == ExitCode.CONFIGURATION
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert "--idempotency-key cli-abc" in line

    report(caught.value, as_json=True)
    assert json.loads(capsys.readouterr().err)["idempotency_key"] == "cli-abc"


def test_a_clear_refusal_needs_no_retry_hint() -> None:
    # Insufficient funds: nothing moved, for certain; the error passes through unchanged.
    with pytest.raises(InsufficientFunds), retry_hint("cli-abc"):
        raise InsufficientFunds("poor")


def test_an_interrupted_movement_exits_130_with_the_key() -> None:
    with pytest.raises(Exit) as caught, retry_hint("cli-abc"):
        raise KeyboardInterrupt
    assert (caught.value.code, caught.value.retry_key) == (ExitCode.INTERRUPTED, "cli-abc")
