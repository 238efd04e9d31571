"""Access tokens: compact JWS (RFC 7515/7519) signed with Ed25519 (RFC 8037, `alg: EdDSA`).

Only one algorithm exists here, so nothing a token says can choose another: a header that is
not exactly `{"alg": "EdDSA", "typ": "JWT", "kid": …}` is refused before any key is looked
at (no `none`, no HMAC keyed with a public key). Verification then checks the signature with the
key named by `kid`, and every claim: `iss`, `aud`, `sub`, `exp`, `iat`, `jti`.

Written on `cryptography` directly rather than a general JWT library: those negotiate among many
algorithms (the source of the classic attacks) and cost ~60 ms of imports on every CLI command;
the tests check interoperability against PyJWT.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mwallet.core.errors import InvalidToken, TokenExpired

ALGORITHM = "EdDSA"
CLOCK_SKEW_SECONDS = 30  # an `iat` this far in the future is still believed
_REQUIRED = ("iss", "aud", "sub", "exp", "iat", "jti")


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as (private, public) raw 32-byte strings."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


def sign(claims: Mapping[str, Any], *, kid: str, private_key: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    header = {"alg": ALGORITHM, "typ": "JWT", "kid": kid}
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode("ascii")
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(signing_input)
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def key_id_of(token: str) -> str:
    """The `kid` of a token whose header is exactly what this module signs; else InvalidToken."""
    header = _decode_json(_parts(token)[0], "header")
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise InvalidToken("the token is not signed with EdDSA")
    if set(header) != {"alg", "typ", "kid"} or header.get("typ") != "JWT":
        raise InvalidToken("the token's header is not one this wallet issues")
    kid = header["kid"]
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("the token names no key")
    return kid


def verify(
    token: str, *, public_key: bytes, issuer: str, audience: str, now: datetime
) -> dict[str, Any]:
    """The claims of a token signed by `public_key` for `audience`, checked at `now`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key_id_of(token)
    header_b64, claims_b64, signature_b64 = _parts(token)
    signature = _b64_decode(signature_b64, "signature")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, f"{header_b64}.{claims_b64}".encode("ascii")
        )
    except (InvalidSignature, ValueError):
        raise InvalidToken("the token's signature is not valid") from None
    claims = _decode_json(claims_b64, "claims")
    if not isinstance(claims, dict):
        raise InvalidToken("the token's claims are not an object")
    missing = [name for name in _REQUIRED if name not in claims]
    if missing:
        raise InvalidToken(f"the token lacks the claims {', '.join(missing)}")
    if claims["iss"] != issuer:
        raise InvalidToken("the token was issued by someone else")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if audience not in audiences:
        raise InvalidToken("the token is meant for another audience")
    if not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str):
        raise InvalidToken("the token's subject or id is not text")
    exp, iat = claims["exp"], claims["iat"]
    if not _is_int(exp) or not _is_int(iat):
        raise InvalidToken("the token's times are not whole seconds")
    seconds = now.timestamp()
    if iat > seconds + CLOCK_SKEW_SECONDS:
        raise InvalidToken("the token claims to be issued in the future")
    if exp <= seconds:
        raise TokenExpired("your access token has expired")
    return claims


def public_keys_of(jwks: object) -> dict[str, bytes]:
    """The Ed25519 verifying keys of a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037), by
    `kid`. Entries of another type, curve, algorithm or use are skipped, so a key set can never
    hand a token an algorithm this module does not sign with; a document that is not a key set
    is refused (InvalidToken)."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise InvalidToken("the published key set is not a JWKS")
    found: dict[str, bytes] = {}
    for entry in entries:
        if not isinstance(entry, dict) or (entry.get("kty"), entry.get("crv")) != (
            "OKP",
            "Ed25519",
        ):
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM or entry.get("use", "sig") != "sig":
            continue
        kid, x = entry.get("kid"), entry.get("x")
        if not isinstance(kid, str) or not kid or not isinstance(x, str):
            continue
        try:
            raw = _b64_decode(x, "key")
        except InvalidToken:
            continue
        if len(raw) == 32:
            found[kid] = raw
    return found


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _b64_decode(text: str, part: str) -> bytes:
    if not text or not all(ch.isalnum() or ch in "-_" for ch in text) or not text.isascii():
        raise InvalidToken(f"the token's {part} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidToken(f"the token's {part} is not base64url") from None
    if b64url(raw) != text:  # one spelling per token: no spare bits to vary a copy with
        raise InvalidToken(f"the token's {part} is not canonical base64url")
    return raw


def _decode_json(text: str, part: str) -> Any:
    try:
        return json.loads(_b64_decode(text, part))
    except (ValueError, RecursionError):
        raise InvalidToken(f"the token's {part} is not JSON") from None


def _parts(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or len(token) > 8192:
        raise InvalidToken("not a token")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidToken("not a signed token (expected three dot-separated parts)")
    return parts[0], parts[1], parts[2]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
