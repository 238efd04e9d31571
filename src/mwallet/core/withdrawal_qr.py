"""The withdrawal QR payload: `MW1:<claims>.<signature>`, both base32, signed with Ed25519.

The claims are compact JSON: the withdrawal id (`w`), amount in minor units (`a`), currency
(`c`), expiry as Unix seconds (`e`), a random nonce (`n`, the QR's own secret, kept only as a
keyed hash) and the signing key's id (`k`). Base32 and the separators are all in the QR code's
alphanumeric set, so the symbol stays small. A terminal verifies the signature with the
instance's public key, offline, and shows the amount before it asks the wallet to redeem.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mwallet.core.domain.money import Money
from mwallet.core.errors import InvalidInput

PREFIX = "MW1:"
MAX_LENGTH = 1024


class InvalidQr(InvalidInput):
    code = "invalid_qr"


@dataclass(frozen=True, slots=True)
class QrClaims:
    withdrawal_id: str
    amount: Money
    expires_at: datetime
    nonce: str
    key_id: str


def sign(claims: QrClaims, *, private_key: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    body = json.dumps(
        {
            "w": claims.withdrawal_id,
            "a": claims.amount.minor,
            "c": claims.amount.currency,
            "e": int(claims.expires_at.timestamp()),
            "n": claims.nonce,
            "k": claims.key_id,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(PREFIX.encode() + body)
    return f"{PREFIX}{_b32(body)}.{_b32(signature)}"


def key_id_of(payload: str) -> str:
    """The signing key a payload names (to pick the public key); the payload is not yet trusted."""
    return str(_claims(_parts(payload)[0])["k"])


def verify(payload: str, *, public_key: bytes, now: datetime | None = None) -> QrClaims:
    """The claims of a payload signed by `public_key`; InvalidQr otherwise (forged, altered,
    not ours). With `now`, an expired payload is refused too."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    body, signature = _parts(payload)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, PREFIX.encode() + body)
    except (InvalidSignature, ValueError):
        raise InvalidQr("this QR code was not issued by this wallet, or was altered") from None
    data = _claims(body)
    try:
        claims = QrClaims(
            withdrawal_id=str(data["w"]),
            amount=Money(data["a"], str(data["c"])),
            expires_at=datetime.fromtimestamp(data["e"], UTC),
            nonce=str(data["n"]),
            key_id=str(data["k"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError, InvalidInput):
        raise InvalidQr("this QR code's contents are not a withdrawal") from None
    if now is not None and now >= claims.expires_at:
        raise InvalidQr("this QR code has expired")
    return claims


def looks_like_payload(text: str) -> bool:
    return text.strip().upper().startswith(PREFIX)


def _parts(payload: str) -> tuple[bytes, bytes]:
    text = payload.strip()
    if len(text) > MAX_LENGTH or not text.upper().startswith(PREFIX):
        raise InvalidQr("not a withdrawal QR code")
    body_text, dot, signature_text = text[len(PREFIX) :].partition(".")
    if not dot:
        raise InvalidQr("not a withdrawal QR code")
    return _unb32(body_text), _unb32(signature_text)


def _claims(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidQr("this QR code's contents are not a withdrawal") from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), str):
        raise InvalidQr("this QR code's contents are not a withdrawal")
    return data


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _unb32(text: str) -> bytes:
    upper = text.upper()
    if not upper.isascii():
        raise InvalidQr("not a withdrawal QR code")
    try:
        return base64.b32decode(upper + "=" * (-len(upper) % 8))
    except (binascii.Error, ValueError):
        raise InvalidQr("not a withdrawal QR code") from None
