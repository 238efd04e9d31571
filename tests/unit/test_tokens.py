"""Access tokens: compact JWS with Ed25519, checked against PyJWT and the classic attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mwallet.core import tokens
from mwallet.core.errors import InvalidToken, SessionExpired, TokenExpired

ISSUER = "https://wallet.test"
AUDIENCE = "mwallet-api"
KID = "sk-2026-01"
NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
PRIVATE, PUBLIC = tokens.new_signing_key()
OTHER_PRIVATE, OTHER_PUBLIC = tokens.new_signing_key()
HEADER = {"alg": "EdDSA", "typ": "JWT", "kid": KID}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def b64_json(value: object) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims_at(now_s: int = NOW_S, /, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "exp": now_s + 600,
        "iat": now_s,
        "jti": "tok-0001",
    }
    claims.update(changes)
    return claims


def forge(header: object, claims: object, private_key: bytes = PRIVATE) -> str:
    """A token with any header and claims, properly Ed25519-signed over exactly those bytes.

    The signature is valid, so a refusal can only come from the header or claim checks.
    """
    signing_input = f"{b64_json(header)}.{b64_json(claims)}"
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def forge_raw(header_b64: str, claims_b64: str, private_key: bytes = PRIVATE) -> str:
    signing_input = f"{header_b64}.{claims_b64}"
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def verify(token: str, *, now: datetime = NOW, public_key: bytes = PUBLIC) -> dict[str, Any]:
    return tokens.verify(token, public_key=public_key, issuer=ISSUER, audience=AUDIENCE, now=now)


def sign(claims: dict[str, Any], *, private_key: bytes = PRIVATE) -> str:
    return tokens.sign(claims, kid=KID, private_key=private_key)


# --- the happy path ------------------------------------------------------------------------------
def test_a_token_we_sign_verifies_and_returns_its_claims() -> None:
    claims = claims_at(scope="wallet")
    assert verify(sign(claims)) == claims


def test_a_signed_token_has_exactly_our_header() -> None:
    header_b64 = sign(claims_at()).split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    assert header == HEADER


def test_new_signing_keys_are_raw_32_byte_pairs_that_differ() -> None:
    private, public = tokens.new_signing_key()
    assert len(private) == 32
    assert len(public) == 32
    assert (private, public) != (PRIVATE, PUBLIC)
    derived = Ed25519PrivateKey.from_private_bytes(private).public_key()
    assert derived.public_bytes_raw() == public


def test_key_id_of_returns_the_kid() -> None:
    assert tokens.key_id_of(sign(claims_at())) == KID
    assert tokens.key_id_of(tokens.sign(claims_at(), kid="other", private_key=PRIVATE)) == "other"


def test_key_id_of_refuses_a_header_we_do_not_issue() -> None:
    with pytest.raises(InvalidToken):
        tokens.key_id_of(forge({"alg": "none", "typ": "JWT", "kid": KID}, claims_at()))


# --- interoperability with PyJWT -----------------------------------------------------------------
def test_pyjwt_verifies_our_tokens() -> None:
    now_s = int(datetime.now(UTC).timestamp())
    claims = claims_at(now_s)
    token = sign(claims)
    decoded = jwt.decode(
        token,
        key=Ed25519PublicKey.from_public_bytes(PUBLIC),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
    assert decoded == claims
    assert jwt.get_unverified_header(token) == HEADER


def test_pyjwt_refuses_our_token_under_another_key() -> None:
    now_s = int(datetime.now(UTC).timestamp())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            sign(claims_at(now_s)),
            key=Ed25519PublicKey.from_public_bytes(OTHER_PUBLIC),
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            issuer=ISSUER,
        )


def test_we_verify_a_token_pyjwt_signs() -> None:
    claims = claims_at()
    token = jwt.encode(
        claims,
        Ed25519PrivateKey.from_private_bytes(PRIVATE),
        algorithm="EdDSA",
        headers={"kid": KID},
    )
    assert jwt.get_unverified_header(token) == HEADER
    assert tokens.key_id_of(token) == KID
    assert verify(token) == claims


# --- the header decides nothing: algorithm confusion and header injection ------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_an_alg_none_token_is_refused(alg: str) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": KID}
    unsigned = f"{b64_json(header)}.{b64_json(claims_at())}."
    with pytest.raises(InvalidToken):
        verify(unsigned)
    with pytest.raises(InvalidToken):  # nor with a valid Ed25519 signature attached
        verify(forge(header, claims_at()))


def test_our_header_with_the_signature_stripped_is_refused() -> None:
    token = sign(claims_at())
    with pytest.raises(InvalidToken):
        verify(token.rsplit(".", 1)[0] + ".")


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize(
    "secret",
    [
        PUBLIC,
        b64(PUBLIC).encode(),
        Ed25519PublicKey.from_public_bytes(PUBLIC).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        ),
    ],
    ids=["raw", "b64", "pem"],
)
def test_hmac_signed_with_the_public_key_is_refused(algorithm: str, secret: bytes) -> None:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    header = {"alg": algorithm, "typ": "JWT", "kid": KID}
    signing_input = f"{b64_json(header)}.{b64_json(claims_at())}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    with pytest.raises(InvalidToken):
        verify(f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize(
    "alg", ["RS256", "RS512", "PS256", "ES256", "ES384", "ES512", "ES256K", "Ed25519", "eddsa", ""]
)
def test_other_algorithms_in_the_header_are_refused(alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT", "kid": KID}, claims_at())
    with pytest.raises(InvalidToken):
        verify(token)
    with pytest.raises(InvalidToken):
        tokens.key_id_of(token)


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
        {"b64": False},
        {"cty": "JWT"},
        {"zip": "DEF"},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_extra_header_fields_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        verify(forge({**HEADER, **extra}, claims_at()))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "EdDSA", "typ": "JWT"},
        {"alg": "EdDSA", "typ": "JWT", "kid": ""},
        {"alg": "EdDSA", "typ": "JWT", "kid": None},
        {"alg": "EdDSA", "typ": "JWT", "kid": 7},
        {"alg": "EdDSA", "typ": "JWT", "kid": [KID]},
        {"alg": "EdDSA", "kid": KID},
        {"alg": "EdDSA", "typ": "JWS", "kid": KID},
        {"alg": ["EdDSA"], "typ": "JWT", "kid": KID},
        {"typ": "JWT", "kid": KID},
        {},
        [HEADER],
        "EdDSA",
        None,
    ],
    ids=[
        "no-kid",
        "empty-kid",
        "null-kid",
        "int-kid",
        "list-kid",
        "no-typ",
        "typ-JWS",
        "alg-list",
        "no-alg",
        "empty",
        "array",
        "string",
        "null",
    ],
)
def test_malformed_headers_are_refused(header: object) -> None:
    token = forge(header, claims_at())
    with pytest.raises(InvalidToken):
        verify(token)
    with pytest.raises(InvalidToken):
        tokens.key_id_of(token)


# --- the signature -------------------------------------------------------------------------------
def test_a_signature_from_another_key_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at(), private_key=OTHER_PRIVATE))


def test_a_copy_spelled_with_other_spare_bits_is_refused() -> None:
    # A 64-byte signature leaves 4 unused bits at the end of its base64url text: a copy that
    # sets them differently decodes to the same bytes, and must still not pass for the token.
    token = sign(claims_at())
    head, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = f"{head}.{signature[:-1]}{alphabet[last ^ 1]}"
    assert base64.urlsafe_b64decode(twin.rpartition(".")[2] + "==") == base64.urlsafe_b64decode(
        signature + "=="
    )
    with pytest.raises(InvalidToken, match="canonical"):
        verify(twin)


def test_a_token_is_refused_under_another_public_key() -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at()), public_key=OTHER_PUBLIC)


@pytest.mark.parametrize("public_key", [b"", PUBLIC[:31], PUBLIC + b"\0"], ids=["0", "31", "33"])
def test_a_public_key_of_the_wrong_length_refuses_rather_than_crashes(public_key: bytes) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at()), public_key=public_key)


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "admin-1"},
        {"exp": NOW_S + 10**6},
        {"aud": [AUDIENCE, "other"]},
        {"jti": "tok-0002"},
        {"scope": "admin"},
    ],
    ids=["sub", "exp", "aud", "jti", "extra-claim"],
)
def test_tampered_claims_keeping_the_signature_are_refused(changes: dict[str, Any]) -> None:
    header_b64, _, signature_b64 = sign(claims_at()).split(".")
    tampered = f"{header_b64}.{b64_json(claims_at(**changes))}.{signature_b64}"
    with pytest.raises(InvalidToken):
        verify(tampered)


def test_a_tampered_header_keeping_the_signature_is_refused() -> None:
    _, claims_b64, signature_b64 = sign(claims_at()).split(".")
    header_b64 = b64_json({"kid": KID, "typ": "JWT", "alg": "EdDSA"})  # same fields, new bytes
    with pytest.raises(InvalidToken):
        verify(f"{header_b64}.{claims_b64}.{signature_b64}")


def test_every_flipped_signature_byte_is_refused() -> None:
    header_b64, claims_b64, signature_b64 = sign(claims_at()).split(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "==")
    for index in range(len(signature)):
        flipped = bytearray(signature)
        flipped[index] ^= 0x01
        with pytest.raises(InvalidToken):
            verify(f"{header_b64}.{claims_b64}.{b64(bytes(flipped))}")


def test_an_expired_token_with_a_bad_signature_is_invalid_not_expired() -> None:
    token = sign(claims_at(exp=NOW_S - 60), private_key=OTHER_PRIVATE)
    with pytest.raises(InvalidToken):
        verify(token)


# --- garbage -------------------------------------------------------------------------------------
GOOD = sign(claims_at())
GOOD_HEADER, GOOD_CLAIMS, GOOD_SIGNATURE = GOOD.split(".")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not a token", id="words"),
        pytest.param("..", id="dots"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}", id="two-parts"),
        pytest.param(f"{GOOD}.{GOOD_SIGNATURE}", id="four-parts"),
        pytest.param(f"{GOOD_HEADER}", id="one-part"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}.", id="empty-signature"),
        pytest.param(f"{GOOD_HEADER}..{GOOD_SIGNATURE}", id="empty-claims"),
        pytest.param(f".{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="empty-header"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE[:-8]}", id="short-signature"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}AAAA", id="long-signature"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}A", id="signature-4k+1"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_CLAIMS}.!!{GOOD_SIGNATURE}", id="signature-bad-chars"),
        pytest.param(f"{GOOD_HEADER}==.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-padding"),
        pytest.param(f"{GOOD_HEADER}+/.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-std-b64"),
        pytest.param(f"{GOOD_HEADER}é.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-non-ascii"),
        pytest.param(
            f"{GOOD_HEADER}\u0661.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-unicode-digit"
        ),
        pytest.param(f"{b64(b'hello')}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-not-json"),
        pytest.param(f"{b64(b'{}')}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", id="header-empty-json"),
        pytest.param(GOOD + "." * 9000, id="huge-dots"),
        pytest.param("a" * 10_000 + GOOD, id="huge"),
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(token)


@pytest.mark.parametrize(
    "claims_b64",
    [
        pytest.param(b64(b"not json"), id="not-json"),
        pytest.param(b64(b"\xff\xfe\xfd"), id="not-utf8"),
        pytest.param(b64_json([claims_at()]), id="array"),
        pytest.param(b64_json("user-42"), id="string"),
        pytest.param(b64_json(42), id="number"),
        pytest.param(b64_json(None), id="null"),
        pytest.param(b64(b"[" * 2500 + b"]" * 2500), id="deeply-nested"),
    ],
)
def test_properly_signed_claims_that_are_not_an_object_are_refused(claims_b64: str) -> None:
    token = forge_raw(b64_json(HEADER), claims_b64)
    assert len(token) <= 8192  # refused for its content, not its size
    with pytest.raises(InvalidToken):
        verify(token)


def test_a_huge_properly_signed_token_is_refused() -> None:
    token = sign(claims_at(padding="x" * 6500))
    assert len(token) > 8192
    with pytest.raises(InvalidToken):
        verify(token)


def test_a_large_token_under_the_size_limit_is_accepted() -> None:
    claims = claims_at(padding="x" * 5500)
    token = sign(claims)
    assert 7000 < len(token) <= 8192
    assert verify(token) == claims


def test_a_token_that_is_not_text_is_refused() -> None:
    for token in (GOOD.encode(), None, 42):
        with pytest.raises(InvalidToken):
            verify(cast(str, token))


# --- the claims ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["iss", "aud", "sub", "exp", "iat", "jti"])
def test_each_required_claim_is_required(name: str) -> None:
    claims = claims_at()
    del claims[name]
    with pytest.raises(InvalidToken, match=name):
        verify(sign(claims))


@pytest.mark.parametrize(
    "iss", ["https://attacker.example", "", ISSUER + "/", ISSUER.upper(), [ISSUER], None]
)
def test_another_issuer_is_refused(iss: object) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at(iss=iss)))


@pytest.mark.parametrize(
    "aud",
    [
        "other-api",
        "",
        AUDIENCE.upper(),
        AUDIENCE + "-admin",
        AUDIENCE[:-1],
        ["other-api"],
        ["other-api", "another-api"],
        [],
        [[AUDIENCE]],
        {AUDIENCE: True},
        None,
    ],
)
def test_another_audience_is_refused(aud: object) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at(aud=aud)))


@pytest.mark.parametrize("aud", [[AUDIENCE], ["other-api", AUDIENCE], [AUDIENCE, "other-api"]])
def test_an_audience_list_containing_ours_is_accepted(aud: list[str]) -> None:
    assert verify(sign(claims_at(aud=aud)))["aud"] == aud


@pytest.mark.parametrize("name", ["sub", "jti"])
@pytest.mark.parametrize("value", [42, None, ["user-42"], {"id": "user-42"}])
def test_subject_and_token_id_must_be_text(name: str, value: object) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at(**{name: value})))


@pytest.mark.parametrize("name", ["exp", "iat"])
@pytest.mark.parametrize(
    "value",
    [True, False, None, "1768469400", 1768469400.5, float(NOW_S + 60), [NOW_S], {"s": NOW_S}],
    ids=["true", "false", "null", "string", "fraction", "float", "list", "object"],
)
def test_times_must_be_whole_seconds(name: str, value: object) -> None:
    with pytest.raises(InvalidToken):
        verify(sign(claims_at(**{name: value})))


@pytest.mark.parametrize("ahead", [31, 60, 3600, 10**9])
def test_an_iat_too_far_in_the_future_is_refused(ahead: int) -> None:
    claims = claims_at(iat=NOW_S + ahead, exp=NOW_S + ahead + 600)
    with pytest.raises(InvalidToken, match="future"):
        verify(sign(claims))


@pytest.mark.parametrize("ahead", [1, 29, tokens.CLOCK_SKEW_SECONDS])
def test_an_iat_within_the_clock_skew_is_accepted(ahead: int) -> None:
    claims = claims_at(iat=NOW_S + ahead)
    assert verify(sign(claims)) == claims


def test_an_iat_in_the_past_is_accepted() -> None:
    claims = claims_at(iat=NOW_S - 86_400)
    assert verify(sign(claims)) == claims


# --- expiry --------------------------------------------------------------------------------------
@pytest.mark.parametrize("exp", [NOW_S, NOW_S - 1, NOW_S - 3600, 0, -1])
def test_an_expired_token_raises_token_expired(exp: int) -> None:
    token = sign(claims_at(iat=NOW_S - 7200, exp=exp))
    with pytest.raises(TokenExpired) as raised:
        verify(token)
    assert isinstance(raised.value, SessionExpired)
    assert not isinstance(raised.value, InvalidToken)


def test_a_token_expiring_one_second_later_is_fine() -> None:
    claims = claims_at(exp=NOW_S + 1)
    assert verify(sign(claims)) == claims
    with pytest.raises(TokenExpired):
        verify(sign(claims), now=NOW + timedelta(seconds=1))


def test_a_token_expires_within_its_last_second() -> None:
    claims = claims_at(exp=NOW_S + 1)
    assert verify(sign(claims), now=NOW + timedelta(milliseconds=999)) == claims


def test_token_expired_is_a_session_expired() -> None:
    assert issubclass(TokenExpired, SessionExpired)


def test_a_key_set_yields_only_ed25519_signing_keys() -> None:
    _, public = tokens.new_signing_key()
    x = tokens.b64url(public)
    ok = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "good", "x": x}
    jwks = {
        "keys": [
            ok,
            {"kty": "OKP", "crv": "Ed25519", "kid": "bare", "x": x},  # alg and use are optional
            {**ok, "kid": "hmac", "kty": "oct", "k": x},
            {**ok, "kid": "rsa-alg", "alg": "RS256"},
            {**ok, "kid": "encryption", "use": "enc"},
            {**ok, "kid": "short", "x": tokens.b64url(public[:16])},
            {**ok, "kid": "padded", "x": x + "="},
            {**ok, "kid": ""},
            "not a key",
        ]
    }
    assert tokens.public_keys_of(jwks) == {"good": public, "bare": public}
    broken: object
    for broken in ({}, {"keys": "x"}, [], "jwks"):
        with pytest.raises(InvalidToken):
            tokens.public_keys_of(broken)
