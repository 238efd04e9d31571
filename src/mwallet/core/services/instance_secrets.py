"""The instance's own secrets, sealed with the data key and made on first use: the pepper that
keys withdrawal codes' and PINs' hashes, and the Ed25519 key that signs withdrawal QR codes."""

from __future__ import annotations

import secrets
from datetime import datetime

from mwallet.core import tokens
from mwallet.core.crypto import SecretBox
from mwallet.core.crypto import key_id as data_key_id
from mwallet.core.services.unit_of_work import UnitOfWork

PEPPER = "withdrawal-pepper"
QR_KEY = "qr-signing-key"


def pepper(uow: UnitOfWork, now: datetime, box: SecretBox) -> bytes:
    """Inside a writing unit of work."""
    return _get_or_make(uow, now, box, PEPPER, lambda: secrets.token_bytes(32))


def qr_key(uow: UnitOfWork, now: datetime, box: SecretBox) -> tuple[str, bytes, bytes]:
    """(key id, private key, public key) of the QR signing key; inside a writing unit of work."""
    private = _get_or_make(uow, now, box, QR_KEY, lambda: tokens.new_signing_key()[0])
    public = public_of(private)
    return qr_key_id(public), private, public


def public_of(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(private)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def qr_key_id(public: bytes) -> str:
    return f"q{data_key_id(public)[:12]}"


def reseal_all(uow: UnitOfWork, box: SecretBox) -> int:
    """Re-seal every instance secret under the current data key; how many were."""
    count = 0
    for name, sealed in uow.instance_secrets.all():
        if not box.sealed_with_current_key(sealed):
            plain = box.open(sealed, context=_context(name))
            uow.instance_secrets.reseal(name, box.seal(plain, context=_context(name)))
            count += 1
    return count


def _get_or_make(uow: UnitOfWork, now: datetime, box: SecretBox, name: str, make: object) -> bytes:
    sealed = uow.instance_secrets.get(name)
    if sealed is None:
        assert callable(make)
        fresh: bytes = make()
        if uow.instance_secrets.add(name, box.seal(fresh, context=_context(name)), now):
            return fresh
        sealed = uow.instance_secrets.get(name)  # another request made it first: use theirs
        assert sealed is not None
    return box.open(sealed, context=_context(name))


def _context(name: str) -> str:
    return f"instance:{name}"
