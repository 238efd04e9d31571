"""How fast mwallet lets people in and checks their tokens, next to the bare primitives.

Measured in one run, on a fresh SQLite database (and PostgreSQL with --pg):

- **Logins per second** through `WalletService.login` with the production argon2id parameters
  (printed), against the baseline of one bare `argon2.PasswordHasher.verify` with the same
  parameters: a login is one password check plus its bookkeeping (the throttle row, a token
  family, a refresh token, an access token, an audit record), so the ratio says what that costs.
- **JWT verifications per second**: `core.tokens.verify` (header check, Ed25519 signature, every
  claim) against PyJWT's `decode` of the same token with the same key, and against the bare
  Ed25519 signature check it cannot go below.
- **Authentications per second**: `WalletService.authenticate` (verification plus the key, the
  session and the user read from the database) against `core.tokens.verify` alone.

It prints; it asserts nothing about time. Run `python bench/auth.py --help`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core import tokens
from mwallet.core.crypto import Keyring
from mwallet.core.domain.sessions import AUDIENCE, ISSUER
from mwallet.core.security import Argon2idHasher

PASSWORD = "bench-password-2026"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"


def rate(action: Callable[[], object], *, seconds: float, rounds: int) -> tuple[float, float]:
    """Median and spread (min-max as a fraction) of calls per second over `rounds` rounds."""
    rates = []
    for _ in range(rounds):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            action()
            calls += 1
        rates.append(calls / elapsed)
    median = statistics.median(rates)
    return median, (max(rates) - min(rates)) / median


def row(label: str, measured: tuple[float, float], baseline: tuple[float, float]) -> None:
    (ours, spread), (theirs, their_spread) = measured, baseline
    print(
        f"  {label:<48} {ours:>10,.0f}/s  baseline {theirs:>10,.0f}/s  "
        f"ratio {ours / theirs:5.2f}x  (spread {spread:.0%} / {their_spread:.0%})"
    )


def bench(wallet: Wallet, hasher: Argon2idHasher, *, seconds: float, rounds: int) -> None:
    service = wallet.service
    service.init(currency="USD")
    phone = "+258841234567"
    service.register(
        phone=phone, display_name="Bench", email=None, password=PASSWORD, idempotency_key="b"
    )
    stored = hasher.hash(PASSWORD)

    def login() -> object:
        return service.login(phone=phone, password=PASSWORD)

    row(
        "login (argon2id + session bookkeeping)",
        rate(login, seconds=seconds, rounds=rounds),
        rate(lambda: hasher.verify(stored, PASSWORD), seconds=seconds, rounds=rounds),
    )

    access = service.login(phone=phone, password=PASSWORD).tokens.access_token
    kid = tokens.key_id_of(access)
    public = next(key for key in service.jwks()["keys"] if key["kid"] == kid)
    raw_public = pyjwt.PyJWK(public).key
    public_bytes = pyjwt.utils.base64url_decode(public["x"])
    signing_input, _, signature_b64 = access.rpartition(".")
    signature = pyjwt.utils.base64url_decode(signature_b64)
    raw_key = Ed25519PublicKey.from_public_bytes(public_bytes)
    now = service.clock.now()

    def ours() -> object:
        return tokens.verify(
            access, public_key=public_bytes, issuer=ISSUER, audience=AUDIENCE, now=now
        )

    def theirs() -> object:
        return pyjwt.decode(
            access, raw_public, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
        )

    ours_rate = rate(ours, seconds=seconds, rounds=rounds)
    row(
        "JWT verify (core.tokens) vs PyJWT decode",
        ours_rate,
        rate(theirs, seconds=seconds, rounds=rounds),
    )
    row(
        "JWT verify (core.tokens) vs bare Ed25519 check",
        ours_rate,
        rate(
            lambda: raw_key.verify(signature, signing_input.encode()),
            seconds=seconds,
            rounds=rounds,
        ),
    )
    row(
        "authenticate (verify + key, session, user)",
        rate(lambda: service.authenticate(access_token=access), seconds=seconds, rounds=rounds),
        ours_rate,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measurement")
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    args = parser.parse_args()

    hasher = Argon2idHasher()  # the production parameters
    print(
        f"argon2id: memory {hasher.memory_kib // 1024} MiB, time cost {hasher.time_cost}, "
        f"parallelism {hasher.parallelism} (OWASP's minimum)"
    )
    secrets = Keyring([b"\x42" * 32])
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite (WAL, synchronous=FULL):")
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        with build_wallet(url, hasher=hasher, secrets=secrets) as wallet:
            bench(wallet, hasher, seconds=args.seconds, rounds=args.rounds)
    if args.pg:
        import psycopg

        name = f"mwallet_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            print("PostgreSQL:")
            with build_wallet(
                PG_SERVER.replace("postgresql:", "postgresql+psycopg:") + name,
                hasher=hasher,
                secrets=secrets,
            ) as wallet:
                bench(wallet, hasher, seconds=args.seconds, rounds=args.rounds)
        finally:
            with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
