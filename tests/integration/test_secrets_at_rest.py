"""Secrets at rest, on SQLite and PostgreSQL: nothing secret is stored readable, the data key
can be rotated, and a sealed value only opens where it was sealed."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core import otp, tokens
from mwallet.core.clock import FixedClock
from mwallet.core.crypto import Keyring, key_id, new_data_key
from mwallet.core.domain.clients import ClientKind
from mwallet.core.domain.users import Principal
from mwallet.core.errors import PermissionDenied, SecretKeyError
from mwallet.core.services.wallet_service import WalletService
from mwallet.secret_keys import EnvironmentKeyStore
from tests.support import (
    FAST_HASHER,
    OPERATOR,
    PASSWORD,
    TEST_KEY,
    TEST_KEYRING,
    make_admin,
    register,
)

STEP = timedelta(seconds=otp.STEP_SECONDS)


def totp(secret: str, clock: FixedClock) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now()))


def enrol(service: WalletService, clock: FixedClock, person: Principal) -> tuple[str, list[str]]:
    secret = service.begin_two_factor(person).secret
    codes = service.confirm_two_factor(person, code=totp(secret, clock))
    clock.advance(STEP)  # the confirming step is spent
    return secret, codes


def with_keys(db_url: str, clock: FixedClock, *keys: bytes) -> Wallet:
    """Another service over the same database, holding these data keys (the first seals)."""
    return build_wallet(db_url, hasher=FAST_HASHER, clock=clock, secrets=Keyring(list(keys)))


# --- what a stolen database holds ----------------------------------------------------------------
def spellings(secret: str | bytes) -> set[bytes]:
    """The ways a secret could sit in a database: as it is, in hex, base64, base64url, base32."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
        written = encode(raw)
        found |= {written, written.rstrip(b"=")}
    found.add(base64.b32encode(raw).rstrip(b"=").lower())
    return found


def unbase64url(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def raw_database(wallet: Wallet, db_url: str) -> bytes:
    """Everything the database holds, as an attacker with its files (or a dump) would read it."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        files = [path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-journal"))]
        return b"".join(file.read_bytes() for file in files if file.exists())
    with wallet.engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ).scalars()
        rows = [
            str(row)
            for table in list(tables)
            for row in conn.execute(text(f'SELECT t::text FROM public."{table}" t')).scalars()
        ]
    return "\n".join(rows).encode()


def leaks(dump: bytes, secrets: Mapping[str, Iterable[bytes]]) -> list[str]:
    return sorted(
        name for name, forms in secrets.items() if any(form in dump for form in set(forms))
    )


def test_no_secret_is_stored_readable(wallet: Wallet, db_url: str, clock: FixedClock) -> None:
    service = wallet.service
    admin = make_admin(service)
    ana, bruno = register(service), register(service)
    totp_secret, recovery = enrol(service, clock, ana)
    pending = service.begin_two_factor(bruno).secret  # an enrolment not yet confirmed
    first = service.login(phone=ana.phone, password=PASSWORD, code=totp(totp_secret, clock))
    assert first.tokens.refresh_token is not None
    second = service.refresh(refresh_token=first.tokens.refresh_token)
    assert second.refresh_token is not None
    terminal = service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 1")
    client_token = service.client_token(
        client_id=terminal.client.id, client_secret=terminal.secret
    ).access_token
    service.rotate_signing_key(actor=admin)
    after_rotation = service.login(phone=bruno.phone, password=PASSWORD).tokens.access_token

    with wallet.engine.connect() as conn:
        keys = conn.execute(text("SELECT kid, private_key FROM signing_keys")).all()
        sealed_totp = conn.execute(
            text("SELECT secret FROM two_factor WHERE user_id = :id"), {"id": ana.user_id}
        ).scalar_one()
    assert len(keys) == 2
    private_keys = [TEST_KEYRING.open(sealed, context=f"signing-key:{kid}") for kid, sealed in keys]
    assert all(len(key) == 32 for key in private_keys)

    secrets: dict[str, set[bytes]] = {
        "password": spellings(PASSWORD),
        "totp secret": spellings(totp_secret) | spellings(base64.b32decode(totp_secret)),
        "pending totp secret": spellings(pending) | spellings(base64.b32decode(pending)),
        "refresh token": {
            form
            for token in (first.tokens.refresh_token, second.refresh_token)
            for form in spellings(token) | spellings(unbase64url(token))
        },
        "access token": {
            form
            for token in (first.tokens.access_token, second.access_token, after_rotation)
            for form in {token.encode(), *spellings(unbase64url(token.rsplit(".", 1)[1]))}
        },
        "client secret": spellings(terminal.secret) | spellings(unbase64url(terminal.secret)),
        "client token": {client_token.encode(), client_token.rsplit(".", 1)[1].encode()},
        "signing key": {form for key in private_keys for form in spellings(key)},
        "recovery codes": {
            form
            for code in recovery
            for spelling in (
                code,
                code.upper(),
                code.replace("-", ""),
                code.replace("-", "").upper(),
            )
            for form in spellings(spelling)
        },
    }
    assert all(len(form) >= 8 for forms in secrets.values() for form in forms)

    dump = raw_database(wallet, db_url)
    # The dump really holds the rows the secrets would be in.
    for seen in (
        ana.phone,
        sealed_totp,
        hashlib.sha256(second.refresh_token.encode()).hexdigest(),
        hashlib.sha256(terminal.secret.encode()).hexdigest(),
        *(kid for kid, _ in keys),
    ):
        assert seen.encode() in dump, seen
    assert leaks(dump, secrets) == []


def test_secrets_are_sealed_under_the_current_data_key(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    enrol(service, clock, ana)
    with wallet.engine.connect() as conn:
        sealed = [
            *conn.execute(text("SELECT secret FROM two_factor")).scalars(),
            *conn.execute(text("SELECT private_key FROM signing_keys")).scalars(),
        ]
    assert len(sealed) == 2
    assert all(value.startswith(f"v1.{key_id(TEST_KEY)}.") for value in sealed)


# --- rotating the data key -----------------------------------------------------------------------
def test_resealing_moves_every_secret_to_the_new_data_key(
    wallet: Wallet, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    admin = make_admin(service)
    ana, carla = register(service), register(service)
    secret, _ = enrol(service, clock, ana)
    service.begin_two_factor(carla)  # pending: sealed all the same
    service.rotate_signing_key(actor=admin)  # two signing keys now
    new = new_data_key()

    with with_keys(db_url, clock, new, TEST_KEY) as both:
        with pytest.raises(PermissionDenied):
            both.service.rotate_data_key(actor=ana, store=EnvironmentKeyStore())
        assert both.service.rotate_data_key(actor=admin, store=EnvironmentKeyStore()) == 4
        assert (
            both.service.rotate_data_key(actor=admin, store=EnvironmentKeyStore()) == 0
        )  # nothing left under the old key
    with wallet.engine.connect() as conn:
        sealed = [
            *conn.execute(text("SELECT secret FROM two_factor")).scalars(),
            *conn.execute(text("SELECT private_key FROM signing_keys")).scalars(),
        ]
    assert len(sealed) == 4
    assert all(value.startswith(f"v1.{key_id(new)}.") for value in sealed)

    with with_keys(db_url, clock, new) as only_new:
        pair = only_new.service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))
        assert only_new.service.authenticate(access_token=pair.tokens.access_token) == ana
        client = only_new.service.add_client(actor=admin, kind=ClientKind.ATM, name="ATM 9")
        assert only_new.service.client_token(
            client_id=client.client.id, client_secret=client.secret
        ).access_token
    clock.advance(STEP)
    with with_keys(db_url, clock, TEST_KEY) as only_old:
        with pytest.raises(SecretKeyError):
            only_old.service.login(phone=ana.phone, password=PASSWORD, code=totp(secret, clock))
        with pytest.raises(SecretKeyError):  # no 2FA, but the token's signing key is sealed
            only_old.service.login(phone=carla.phone, password=PASSWORD)

    rotated = [
        record.details
        for record in service.audit_log(actor=OPERATOR, limit=1000)
        if record.action == "data_key.rotated"
    ]
    assert sorted(details["resealed"] for details in rotated) == [0, 4]


def test_a_sealed_totp_secret_moved_to_another_user_does_not_open(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    anas_secret, _ = enrol(service, clock, ana)
    enrol(service, clock, bruno)
    with wallet.engine.begin() as conn:
        anas = conn.execute(
            text("SELECT secret FROM two_factor WHERE user_id = :id"), {"id": ana.user_id}
        ).scalar_one()
        conn.execute(
            text("UPDATE two_factor SET secret = :sealed WHERE user_id = :id"),
            {"sealed": anas, "id": bruno.user_id},
        )
    with pytest.raises(SecretKeyError):
        service.login(phone=bruno.phone, password=PASSWORD, code=totp(anas_secret, clock))
    assert service.login(phone=ana.phone, password=PASSWORD, code=totp(anas_secret, clock))


def test_a_sealed_signing_key_moved_to_another_kid_does_not_open(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    admin = make_admin(service)
    old_kid = tokens.key_id_of(
        service.login(phone=admin.phone, password=PASSWORD).tokens.access_token
    )
    new_kid = service.rotate_signing_key(actor=admin).kid
    with wallet.engine.begin() as conn:
        old = conn.execute(
            text("SELECT private_key FROM signing_keys WHERE kid = :kid"), {"kid": old_kid}
        ).scalar_one()
        conn.execute(
            text("UPDATE signing_keys SET private_key = :sealed WHERE kid = :kid"),
            {"sealed": old, "kid": new_kid},
        )
    with pytest.raises(SecretKeyError):
        service.login(phone=admin.phone, password=PASSWORD)
