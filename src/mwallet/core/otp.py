"""Two-factor codes: TOTP (RFC 6238, via pyotp) and single-use recovery codes.

TOTP here: SHA-1, 30-second steps, 6 digits (what every authenticator app speaks), a 160-bit
secret, and ±1 step of drift. A code is accepted only for a time-step later than the last one
accepted for that user, so a code seen once (over a shoulder, in a log) is worth nothing after.

Recovery codes are 10 random codes of 60 bits each, shown once and stored as SHA-256 digests:
they are random, not chosen by people, so a fast hash leaves nothing to guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BITS = 160
RECOVERY_CODES = 10
ISSUER = "mwallet"

_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def new_secret() -> str:
    """A base32 TOTP secret of SECRET_BITS random bits."""
    return base64.b32encode(secrets.token_bytes(SECRET_BITS // 8)).decode()


def time_step(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def matching_step(secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
    """The time-step `code` belongs to, within ±1 step of now and after `after_step`; else None."""
    typed = code.strip().replace(" ", "")
    if len(typed) != DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    current = time_step(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue  # replay: this step (or an earlier one) was already used
        if hmac.compare_digest(code_at_step(secret, step), typed):
            return step
    return None


def provisioning_uri(secret: str, *, account: str) -> str:
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES codes like `k7qm-x2ta-9hfw` (12 symbols of a 31-letter alphabet each)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        symbols = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        codes.append(f"{symbols[:4]}-{symbols[4:8]}-{symbols[8:]}")
    return codes


def looks_like_recovery_code(text: str) -> bool:
    return len(_canonical(text)) == 12


def recovery_digest(code: str) -> str:
    return hashlib.sha256(_canonical(code).encode()).hexdigest()


def _canonical(code: str) -> str:
    return "".join(ch for ch in code.strip().lower() if ch not in "- ")
