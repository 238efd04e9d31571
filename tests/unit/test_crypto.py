"""Secrets at rest: AES-GCM keyrings, sealed for a context, rotated by putting a new key first."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from mwallet.core.crypto import KEY_BYTES, Keyring, LazyKeyring, key_id, new_data_key
from mwallet.core.errors import SecretKeyError

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
CONTEXT = "totp:user-1"
SECRET = b"JBSWY3DPEHPK3PXPJBSWY3DP"


def body_of(sealed: str) -> bytes:
    text = sealed.split(".")[2]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_body(sealed: str, body: bytes) -> str:
    version, kid, _ = sealed.split(".")
    return f"{version}.{kid}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"


# --- keys ----------------------------------------------------------------------------------------
def test_new_data_keys_are_32_random_bytes() -> None:
    keys = {new_data_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(key) == KEY_BYTES == 32 for key in keys)


def test_key_id_is_a_short_digest_of_the_key() -> None:
    assert key_id(OLD_KEY) == key_id(bytes(range(32)))
    assert key_id(OLD_KEY) != key_id(NEW_KEY)
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(OLD_KEY))
    assert key_id(OLD_KEY) == hashlib.sha256(OLD_KEY).hexdigest()[:16]
    assert OLD_KEY.hex()[:16] != key_id(OLD_KEY)  # names the key without showing it


@pytest.mark.parametrize("length", [0, 1, 16, 24, 31, 33, 64])
def test_keys_of_the_wrong_length_are_refused(length: int) -> None:
    with pytest.raises(SecretKeyError, match="32 bytes"):
        Keyring([bytes(length)])
    with pytest.raises(SecretKeyError, match="32 bytes"):
        Keyring([NEW_KEY, bytes(length)])  # an old key is checked as well as the current one


def test_an_empty_keyring_is_refused() -> None:
    with pytest.raises(SecretKeyError):
        Keyring([])


# --- seal and open -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plaintext", [b"", b"x", SECRET, bytes(range(256)), b"\0" * 10_000], ids=len
)
def test_seal_then_open_returns_the_plaintext(plaintext: bytes) -> None:
    ring = Keyring([OLD_KEY])
    assert ring.open(ring.seal(plaintext, context=CONTEXT), context=CONTEXT) == plaintext


def test_a_sealed_value_names_its_format_and_key() -> None:
    ring = Keyring([OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    assert re.fullmatch(rf"v1\.{key_id(OLD_KEY)}\.[A-Za-z0-9_-]+", sealed)
    assert ring.current_key_id == key_id(OLD_KEY)
    # a 12-byte nonce, the ciphertext (as long as the plaintext) and a 16-byte tag
    assert len(body_of(sealed)) == 12 + len(SECRET) + 16


def test_the_sealed_text_never_contains_the_plaintext() -> None:
    ring = Keyring([OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    body = body_of(sealed)
    assert SECRET.decode() not in sealed
    assert SECRET not in body
    for offset in range(3):  # nor the plaintext merely base64-encoded, at any alignment
        encoded = base64.urlsafe_b64encode(SECRET[offset:]).decode().rstrip("=")
        assert encoded[4:-4] not in sealed


def test_each_seal_differs() -> None:
    ring = Keyring([OLD_KEY])
    sealed = [ring.seal(SECRET, context=CONTEXT) for _ in range(50)]
    assert len(set(sealed)) == 50
    assert len({body_of(value)[:12] for value in sealed}) == 50  # a fresh nonce every time
    assert {ring.open(value, context=CONTEXT) for value in sealed} == {SECRET}


@pytest.mark.parametrize(
    "other", ["totp:user-2", "totp:user-10", "TOTP:user-1", "", "totp:user-1 "]
)
def test_opening_under_another_context_fails(other: str) -> None:
    ring = Keyring([OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    with pytest.raises(SecretKeyError, match="integrity"):
        ring.open(sealed, context=other)


def test_flipping_any_byte_of_the_sealed_body_fails() -> None:
    ring = Keyring([OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    body = body_of(sealed)
    for index in range(len(body)):  # nonce, ciphertext and tag alike
        for mask in (0x01, 0x80):
            flipped = bytearray(body)
            flipped[index] ^= mask
            with pytest.raises(SecretKeyError):
                ring.open(with_body(sealed, bytes(flipped)), context=CONTEXT)


@pytest.mark.parametrize("cut", [1, 15, 16, 17])
def test_a_truncated_body_fails(cut: int) -> None:
    ring = Keyring([OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    with pytest.raises(SecretKeyError):
        ring.open(with_body(sealed, body_of(sealed)[:-cut]), context=CONTEXT)


def test_a_value_relabelled_with_another_configured_key_fails() -> None:
    ring = Keyring([NEW_KEY, OLD_KEY])
    sealed = ring.seal(SECRET, context=CONTEXT)
    relabelled = sealed.replace(key_id(NEW_KEY), key_id(OLD_KEY))
    with pytest.raises(SecretKeyError):
        ring.open(relabelled, context=CONTEXT)


# --- rotation ------------------------------------------------------------------------------------
def test_a_rotated_keyring_opens_old_values_and_seals_with_the_new_key() -> None:
    old_ring = Keyring([OLD_KEY])
    old_sealed = old_ring.seal(SECRET, context=CONTEXT)
    ring = Keyring([NEW_KEY, OLD_KEY])

    assert ring.current_key_id == key_id(NEW_KEY)
    assert ring.key_ids == [key_id(NEW_KEY), key_id(OLD_KEY)]
    assert ring.open(old_sealed, context=CONTEXT) == SECRET
    assert not ring.sealed_with_current_key(old_sealed)
    assert old_ring.sealed_with_current_key(old_sealed)

    new_sealed = ring.seal(SECRET, context=CONTEXT)
    assert new_sealed.split(".")[1] == key_id(NEW_KEY)
    assert ring.sealed_with_current_key(new_sealed)
    assert Keyring([NEW_KEY]).open(new_sealed, context=CONTEXT) == SECRET


def test_a_keyring_without_the_sealing_key_names_the_missing_key() -> None:
    sealed = Keyring([OLD_KEY]).seal(SECRET, context=CONTEXT)
    with pytest.raises(SecretKeyError, match=key_id(OLD_KEY)):
        Keyring([NEW_KEY]).open(sealed, context=CONTEXT)


def test_sealed_with_current_key_refuses_a_malformed_value() -> None:
    with pytest.raises(SecretKeyError):
        Keyring([OLD_KEY]).sealed_with_current_key("not sealed")


# --- malformed sealed values ---------------------------------------------------------------------
KID = key_id(OLD_KEY)
GOOD = Keyring([OLD_KEY]).seal(SECRET, context=CONTEXT)
GOOD_TEXT = GOOD.split(".")[2]


@pytest.mark.parametrize(
    "sealed",
    [
        pytest.param("", id="empty"),
        pytest.param("plaintext", id="no-dots"),
        pytest.param(f"v1.{KID}", id="two-parts"),
        pytest.param(f"{GOOD}.extra", id="four-parts"),
        pytest.param(f"v2.{KID}.{GOOD_TEXT}", id="unknown-version"),
        pytest.param(f".{KID}.{GOOD_TEXT}", id="no-version"),
        pytest.param(f"v1..{GOOD_TEXT}", id="no-key-id"),
        pytest.param(f"v1.{key_id(NEW_KEY)}.{GOOD_TEXT}", id="unknown-key-id"),
        pytest.param(f"v1.{KID}.{'A' * 16}", id="nonce-without-tag"),
        pytest.param(f"v1.{KID}.{GOOD_TEXT[:-10]}", id="cut-short"),
        pytest.param(f"v1.{KID}.", id="empty-body"),
        pytest.param(f"v1.{KID}.A", id="body-4k+1"),
        pytest.param(f"v1.{KID}.AAAA", id="body-3-bytes"),
        pytest.param(f"v1.{KID}.!!!!", id="body-not-base64"),
        pytest.param(f"v1.{KID}.é{GOOD_TEXT}", id="body-non-ascii"),
    ],
)
def test_malformed_sealed_values_are_refused_not_crashed_on(sealed: str) -> None:
    with pytest.raises(SecretKeyError):
        Keyring([OLD_KEY]).open(sealed, context=CONTEXT)


# --- the lazy keyring ----------------------------------------------------------------------------
class CountingLoader:
    def __init__(self, *rings: Keyring) -> None:
        self.rings = list(rings)
        self.calls = 0

    def __call__(self) -> Keyring:
        ring = self.rings[min(self.calls, len(self.rings) - 1)]
        self.calls += 1
        return ring


def test_a_lazy_keyring_loads_on_first_use_and_only_once() -> None:
    loader = CountingLoader(Keyring([OLD_KEY]))
    lazy = LazyKeyring(loader)
    assert loader.calls == 0

    sealed = lazy.seal(SECRET, context=CONTEXT)
    assert loader.calls == 1
    assert lazy.open(sealed, context=CONTEXT) == SECRET
    assert lazy.sealed_with_current_key(sealed)
    assert lazy.current_key_id == key_id(OLD_KEY)
    assert loader.calls == 1


def test_a_lazy_keyring_that_cannot_load_fails_only_when_used() -> None:
    def broken() -> Keyring:
        raise SecretKeyError("no data key")

    lazy = LazyKeyring(broken)
    with pytest.raises(SecretKeyError):
        lazy.seal(SECRET, context=CONTEXT)


def test_reload_loads_the_keyring_again() -> None:
    loader = CountingLoader(Keyring([OLD_KEY]), Keyring([NEW_KEY, OLD_KEY]))
    lazy = LazyKeyring(loader)
    old_sealed = lazy.seal(SECRET, context=CONTEXT)
    assert lazy.current_key_id == key_id(OLD_KEY)

    lazy.reload()
    assert loader.calls == 1  # reloading is lazy too
    assert lazy.current_key_id == key_id(NEW_KEY)
    assert loader.calls == 2
    assert not lazy.sealed_with_current_key(old_sealed)
    assert lazy.open(old_sealed, context=CONTEXT) == SECRET
    assert lazy.seal(SECRET, context=CONTEXT).split(".")[1] == key_id(NEW_KEY)
    assert loader.calls == 2
