"""Two-factor authentication and step-up through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.domain.clients import ClientKind
from mwallet.core.domain.lockout import LOCK_DURATION, MAX_FAILURES
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    AccountLocked,
    InsufficientFunds,
    InvalidCredentials,
    InvalidSecondFactor,
    PermissionDenied,
    SecondFactorRequired,
    TwoFactorAlreadyOn,
    TwoFactorNotOn,
)
from mwallet.core.services.two_factor import TwoFactorStatus
from mwallet.core.services.wallet_service import WalletService
from tests.support import OPERATOR, PASSWORD, make_admin, open_wallet, register

STEP = timedelta(seconds=otp.STEP_SECONDS)


def totp(secret: str, clock: FixedClock, steps: int = 0) -> str:
    """The code an authenticator shows `steps` time-steps from the clock's now."""
    return otp.code_at_step(secret, otp.time_step(clock.now()) + steps)


def wrong_code(secret: str, clock: FixedClock) -> str:
    """Six digits that are not the code of any step accepted now."""
    near = {totp(secret, clock, steps) for steps in (-1, 0, 1)}
    return next(code for code in ("123456", "654321", "111111", "222222") if code not in near)


def enrol(service: WalletService, clock: FixedClock, person: Principal) -> tuple[str, list[str]]:
    """Turn 2FA on; the secret and the recovery codes. The clock moves past the confirming step."""
    secret = service.begin_two_factor(person).secret
    codes = service.confirm_two_factor(person, code=totp(secret, clock))
    clock.advance(STEP)
    return secret, codes


def _status(*, enabled: bool, pending: bool, left: int) -> TwoFactorStatus:
    return TwoFactorStatus(enabled=enabled, pending=pending, recovery_codes_left=left)


def records(service: WalletService) -> list[tuple[str, dict[str, Any]]]:
    return [
        (record.action, record.details)
        for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))
    ]


def actions(service: WalletService) -> list[str]:
    return [action for action, _ in records(service)]


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


# --- enrolment -----------------------------------------------------------------------------------
def test_enrolment_is_begin_then_confirm_and_gives_ten_recovery_codes(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    assert service.two_factor_status(ana) == _status(enabled=False, pending=False, left=0)

    enrollment = service.begin_two_factor(ana)
    assert enrollment.uri.startswith("otpauth://totp/")
    assert f"secret={enrollment.secret}" in enrollment.uri
    assert "issuer=mwallet" in enrollment.uri
    assert service.two_factor_status(ana) == _status(enabled=False, pending=True, left=0)

    codes = service.confirm_two_factor(ana, code=totp(enrollment.secret, clock))
    assert len(codes) == len(set(codes)) == 10
    assert service.two_factor_status(ana) == _status(enabled=True, pending=False, left=10)


def test_a_wrong_confirming_code_leaves_2fa_off(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret = service.begin_two_factor(ana).secret
    with pytest.raises(InvalidSecondFactor):
        service.confirm_two_factor(ana, code=wrong_code(secret, clock))
    assert service.two_factor_status(ana) == _status(enabled=False, pending=True, left=0)
    assert service.login(phone=ana.phone, password=PASSWORD).tokens.access_token
    assert "2fa.enabled" not in actions(service)


def test_confirming_with_nothing_pending_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    with pytest.raises(TwoFactorNotOn):
        service.confirm_two_factor(ana, code="123456")


def test_beginning_again_replaces_the_pending_secret(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    first = service.begin_two_factor(ana).secret
    second = service.begin_two_factor(ana).secret
    assert first != second
    with pytest.raises(InvalidSecondFactor):
        service.confirm_two_factor(ana, code=totp(first, clock))
    service.confirm_two_factor(ana, code=totp(second, clock))
    assert service.two_factor_status(ana).enabled


def test_beginning_or_confirming_when_already_on_is_refused(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    with pytest.raises(TwoFactorAlreadyOn):
        service.begin_two_factor(ana)
    with pytest.raises(TwoFactorAlreadyOn):
        service.confirm_two_factor(ana, code=totp(secret, clock))
    # The secret in use was not replaced.
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))


def test_a_client_cannot_begin_2fa(wallet: Wallet) -> None:
    service = wallet.service
    admin = make_admin(service)
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 7")
    token = service.client_token(client_id=terminal.client.id, client_secret=terminal.secret)
    atm = service.authenticate(access_token=token.access_token)
    with pytest.raises(PermissionDenied):
        service.begin_two_factor(atm)


# --- logging in ----------------------------------------------------------------------------------
def test_login_with_2fa_on_needs_the_current_code(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    with pytest.raises(SecondFactorRequired):
        service.login(phone=ana.phone, password=PASSWORD)
    result = service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))
    assert result.principal == ana
    assert service.authenticate(access_token=result.tokens.access_token) == ana


def test_a_code_is_refused_a_second_time_in_its_step(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    code = totp(secret, clock)
    service.login(phone=ana.phone, password=PASSWORD, code=code)
    clock.advance(timedelta(seconds=10))  # same step: the authenticator still shows `code`
    assert totp(secret, clock) == code
    with pytest.raises(InvalidSecondFactor):
        service.login(phone=ana.phone, password=PASSWORD, code=code)
    clock.advance(STEP)
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))


def test_one_step_of_drift_is_accepted_and_two_are_not(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    clock.advance(2 * STEP)
    for steps in (-2, 2):
        with pytest.raises(InvalidSecondFactor):
            service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock, steps))
    service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock, -1))
    service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock, +1))
    # The step after now was used: now's own code is older, so a replay.
    with pytest.raises(InvalidSecondFactor):
        service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))


def test_a_recovery_code_works_once(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    _, codes = enrol(service, clock, ana)
    assert service.login(phone=ana.phone, password=PASSWORD, code=codes[0]).principal == ana
    assert service.two_factor_status(ana).recovery_codes_left == 9
    with pytest.raises(InvalidSecondFactor):
        service.login(phone=ana.phone, password=PASSWORD, code=codes[0])
    assert service.two_factor_status(ana).recovery_codes_left == 9


def test_recovery_codes_ignore_case_dashes_and_spaces(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    _, codes = enrol(service, clock, ana)
    service.login(phone=ana.phone, password=PASSWORD, code=codes[1].upper().replace("-", ""))
    service.login(phone=ana.phone, password=PASSWORD, code=f" {codes[2].replace('-', ' ')} ")
    assert service.two_factor_status(ana).recovery_codes_left == 8
    with pytest.raises(InvalidSecondFactor):  # the first spelling spent the code itself
        service.login(phone=ana.phone, password=PASSWORD, code=codes[1])


def test_a_recovery_code_is_one_users_only(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    _, anas_codes = enrol(service, clock, ana)
    enrol(service, clock, bruno)
    with pytest.raises(InvalidSecondFactor):
        service.login(phone=bruno.phone, password=PASSWORD, code=anas_codes[0])
    assert service.two_factor_status(ana).recovery_codes_left == 10


def test_five_wrong_codes_lock_the_number_for_30_minutes(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidSecondFactor):
            service.login(phone=ana.phone, password=PASSWORD, code=wrong_code(secret, clock))
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD, code=wrong_code(secret, clock))
    with pytest.raises(AccountLocked):  # the right password and the right code
        service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))

    clock.advance(LOCK_DURATION - timedelta(seconds=1))
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))
    clock.advance(timedelta(seconds=1))
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))

    failed = [details for action, details in records(service) if action == "login.failed"]
    assert failed == [{"failures": n, "reason": "second_factor"} for n in range(1, 6)]
    assert actions(service).count("login.locked") == 1


def test_wrong_codes_and_wrong_passwords_count_toward_one_lock(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    for _ in range(2):
        with pytest.raises(InvalidSecondFactor):
            service.login(phone=ana.phone, password=PASSWORD, code=wrong_code(secret, clock))
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            service.login(phone=ana.phone, password="not-the-password")
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD, code=wrong_code(secret, clock))


# --- turning it off ------------------------------------------------------------------------------
def test_turning_2fa_off_takes_a_valid_code(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    with pytest.raises(InvalidSecondFactor):
        service.disable_two_factor(ana, code=wrong_code(secret, clock))
    assert service.two_factor_status(ana).enabled
    with pytest.raises(SecondFactorRequired):
        service.login(phone=ana.phone, password=PASSWORD)

    service.disable_two_factor(ana, code=totp(secret, clock))
    assert service.two_factor_status(ana) == _status(enabled=False, pending=False, left=0)
    assert service.login(phone=ana.phone, password=PASSWORD).principal == ana
    with pytest.raises(TwoFactorNotOn):
        service.disable_two_factor(ana, code=totp(secret, clock, 1))


def test_a_recovery_code_turns_2fa_off_too(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    _, codes = enrol(service, clock, ana)
    service.disable_two_factor(ana, code=codes[4])
    assert not service.two_factor_status(ana).enabled


def test_wrong_codes_to_turn_it_off_lock_the_number(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, _ = enrol(service, clock, ana)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(InvalidSecondFactor):
            service.disable_two_factor(ana, code=wrong_code(secret, clock))
    with pytest.raises(AccountLocked):
        service.disable_two_factor(ana, code=wrong_code(secret, clock))
    with pytest.raises(AccountLocked):
        service.disable_two_factor(ana, code=totp(secret, clock))
    assert service.two_factor_status(ana).enabled


def test_2fa_changes_and_failed_codes_are_on_record(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    secret, codes = enrol(service, clock, ana)
    service.login(phone=ana.phone, password=PASSWORD, code=codes[0])
    with pytest.raises(InvalidSecondFactor):
        service.login(phone=ana.phone, password=PASSWORD, code=wrong_code(secret, clock))
    service.disable_two_factor(ana, code=totp(secret, clock))

    assert actions(service)[-5:] == [
        "2fa.enabled",
        "2fa.recovery_code_used",
        "login.succeeded",
        "login.failed",
        "2fa.disabled",
    ]
    recorded = records(service)
    assert ("2fa.recovery_code_used", {"left": 9}) in recorded
    assert ("login.failed", {"failures": 1, "reason": "second_factor"}) in recorded
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).ok


# --- step-up -------------------------------------------------------------------------------------
def test_the_step_up_amount_is_1000_until_an_admin_sets_another(
    wallet: Wallet, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    assert service.step_up_amount() == service.parse_money("1000.00")
    assert service.step_up_amount().currency == "USD"
    ana = register(service)
    with pytest.raises(PermissionDenied):
        service.set_step_up(actor=ana, amount=service.parse_money("100"))
    assert service.step_up_amount() == service.parse_money("1000")

    admin = make_admin(service)
    service.set_step_up(actor=admin, amount=service.parse_money("100"))
    assert service.step_up_amount() == service.parse_money("100")
    with open_wallet(db_url, clock) as other:  # kept in the database, not in this process
        assert other.service.step_up_amount() == service.parse_money("100")
    assert ("limits.step_up_set", {"minor": 10000}) in records(service)


def step_up_setup(service: WalletService, clock: FixedClock) -> tuple[Principal, str, Principal]:
    """Ana (500.00, 2FA on) and Bruno (0), with step-up at 100.00."""
    service.set_step_up(actor=OPERATOR, amount=service.parse_money("100"))
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=service.parse_money("500"), source="sandbox", idempotency_key=key())
    secret, _ = enrol(service, clock, ana)
    return ana, secret, bruno


def test_a_transfer_below_the_step_up_amount_needs_no_code(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, _, bruno = step_up_setup(service, clock)
    service.transfer(
        ana, to_phone=bruno.phone, amount=service.parse_money("99.99"), note=None,
        idempotency_key=key(),
    )  # fmt: skip
    assert service.balance(bruno).balance == service.parse_money("99.99")


def test_a_transfer_at_the_step_up_amount_needs_a_right_fresh_code(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, secret, bruno = step_up_setup(service, clock)
    hundred = service.parse_money("100")

    def send(code: str | None, idempotency_key: str | None = None) -> Any:
        return service.transfer(
            ana, to_phone=bruno.phone, amount=hundred, note="rent",
            idempotency_key=idempotency_key or key(), code=code,
        )  # fmt: skip

    # Refused for the code, the request keeps its key free: sent again with one, it goes through.
    same_key = key()
    with pytest.raises(SecondFactorRequired):
        send(None, same_key)
    with pytest.raises(InvalidSecondFactor):
        send(wrong_code(secret, clock), same_key)
    assert service.balance(ana).balance == service.parse_money("500")
    assert service.balance(bruno).balance.minor == 0
    assert records(service)[-1] == ("login.failed", {"failures": 1, "reason": "second_factor"})

    code = totp(secret, clock)
    done = send(code, same_key)
    assert service.balance(bruno).balance == hundred
    # A retry of the same request replays it, though its code is spent by now.
    assert send(code, same_key) == done
    assert service.balance(bruno).balance == hundred
    assert service.balance(ana).balance == service.parse_money("400")
    with pytest.raises(InvalidSecondFactor):  # a new request with the spent code
        send(code)
    assert service.verify_ledger(actor=OPERATOR).ok


def test_a_failed_transfer_leaves_its_code_usable(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, secret, bruno = step_up_setup(service, clock)
    code = totp(secret, clock)
    with pytest.raises(InsufficientFunds):
        service.transfer(
            ana, to_phone=bruno.phone, amount=service.parse_money("600"), note=None,
            idempotency_key=key(), code=code,
        )  # fmt: skip
    service.transfer(
        ana, to_phone=bruno.phone, amount=service.parse_money("150"), note=None,
        idempotency_key=key(), code=code,
    )  # fmt: skip
    assert service.balance(bruno).balance == service.parse_money("150")


def test_five_wrong_step_up_codes_lock_the_number(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, secret, bruno = step_up_setup(service, clock)
    errors = []
    for _ in range(MAX_FAILURES):
        with pytest.raises((InvalidSecondFactor, AccountLocked)) as caught:
            service.transfer(
                ana, to_phone=bruno.phone, amount=service.parse_money("100"), note=None,
                idempotency_key=key(), code=wrong_code(secret, clock),
            )  # fmt: skip
        errors.append(type(caught.value))
    assert errors == [InvalidSecondFactor] * (MAX_FAILURES - 1) + [AccountLocked]
    with pytest.raises(AccountLocked):
        service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))
    assert service.balance(bruno).balance.minor == 0


def test_retrying_a_step_up_transfer_does_not_lock_the_number(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, secret, bruno = step_up_setup(service, clock)
    code, same_key = totp(secret, clock), key()
    for _ in range(MAX_FAILURES + 1):
        service.transfer(
            ana, to_phone=bruno.phone, amount=service.parse_money("100"), note=None,
            idempotency_key=same_key, code=code,
        )  # fmt: skip
    clock.advance(STEP)
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))


def test_refused_transfers_with_right_codes_do_not_lock_the_number(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, secret, bruno = step_up_setup(service, clock)
    for _ in range(MAX_FAILURES + 1):
        with pytest.raises(InsufficientFunds):
            service.transfer(
                ana, to_phone=bruno.phone, amount=service.parse_money("600"), note=None,
                idempotency_key=key(), code=totp(secret, clock),
            )  # fmt: skip
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))


def test_without_2fa_large_transfers_need_no_code(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=service.parse_money("5000"), source="sandbox", idempotency_key=key())
    service.transfer(
        ana, to_phone=bruno.phone, amount=service.parse_money("2500"), note=None,
        idempotency_key=key(),
    )  # fmt: skip
    assert service.balance(bruno).balance == service.parse_money("2500")
