"""Access and refresh tokens, and the keys that sign them, through the services, on SQLite and
PostgreSQL. PyJWT is the independent implementation the tokens are checked against."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core import tokens
from mwallet.core.clock import FixedClock
from mwallet.core.domain.roles import ROLE_PERMISSIONS, Role
from mwallet.core.domain.sessions import ACCESS_TOKEN_LIFETIME, TokenPair
from mwallet.core.errors import (
    ConcurrencyConflict,
    DatabaseBusy,
    InvalidCredentials,
    InvalidToken,
    PermissionDenied,
    RefreshTokenReused,
    SessionExpired,
    TokenExpired,
    WalletError,
)
from mwallet.core.services.wallet_service import WalletService
from tests.support import (
    OPERATOR,
    PASSWORD,
    TEST_KEYRING,
    make_admin,
    open_wallet,
    register,
)

SECOND = timedelta(seconds=1)
NEW_PASSWORD = "a-brand-new-passphrase"


def login(service: WalletService, phone: str, password: str = PASSWORD) -> TokenPair:
    return service.login(phone=phone, password=password).tokens


def refresh_token_of(pair: TokenPair) -> str:
    assert pair.refresh_token is not None
    return pair.refresh_token


def records(service: WalletService) -> list[tuple[str, dict[str, Any]]]:
    return [
        (record.action, record.details)
        for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))
    ]


def pyjwt_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of `token`, its signature checked by PyJWT with the key the JWKS names.

    The tokens were issued at the test clock's time, not the machine's: PyJWT checks no times.
    """
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid].key
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["EdDSA"],
        audience="mwallet",
        issuer="mwallet",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


def stored_private_key(wallet: Wallet, kid: str) -> bytes:
    with wallet.engine.connect() as conn:
        sealed = conn.execute(
            text("SELECT private_key FROM signing_keys WHERE kid = :kid"), {"kid": kid}
        ).scalar_one()
    return TEST_KEYRING.open(sealed, context=f"signing-key:{kid}")


# --- access tokens -------------------------------------------------------------------------------
def test_an_access_token_says_who_and_what_and_pyjwt_agrees(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    pair = login(service, ana.phone)
    claims = pyjwt_claims(pair.access_token, service.jwks())
    assert claims["sub"] == ana.user_id
    assert claims["roles"] == ["customer"]
    assert claims["scope"].split() == sorted(p.value for p in ROLE_PERMISSIONS[Role.CUSTOMER])
    assert claims["sid"] == pair.family_id
    assert claims["iat"] == int(clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == ACCESS_TOKEN_LIFETIME.total_seconds()
    assert pair.access_expires_at == clock.now() + ACCESS_TOKEN_LIFETIME
    assert jwt.get_unverified_header(pair.access_token) == {
        "alg": "EdDSA",
        "typ": "JWT",
        "kid": tokens.key_id_of(pair.access_token),
    }
    assert service.authenticate(access_token=pair.access_token) == ana


def test_an_access_token_expires_after_15_minutes(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    pair = login(service, ana.phone)
    clock.advance(ACCESS_TOKEN_LIFETIME - SECOND)
    assert service.authenticate(access_token=pair.access_token) == ana
    clock.advance(SECOND)
    with pytest.raises(TokenExpired):
        service.authenticate(access_token=pair.access_token)
    fresh = service.refresh(refresh_token=refresh_token_of(pair))
    assert service.authenticate(access_token=fresh.access_token) == ana


def test_garbage_is_not_a_token(wallet: Wallet) -> None:
    service = wallet.service
    for garbage in ("", "abc", "a.b.c", "x" * 9000):
        with pytest.raises(InvalidToken):
            service.authenticate(access_token=garbage)
    with pytest.raises(InvalidToken):
        service.refresh(refresh_token="never-issued")


# --- refresh tokens ------------------------------------------------------------------------------
def test_each_refresh_hands_out_a_new_refresh_token_in_the_same_login(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    first = login(service, ana.phone)
    second = service.refresh(refresh_token=refresh_token_of(first))
    third = service.refresh(refresh_token=refresh_token_of(second))
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert len({first.access_token, second.access_token, third.access_token}) == 3
    assert first.family_id == second.family_id == third.family_id
    assert service.authenticate(access_token=third.access_token) == ana


def test_a_reused_refresh_token_ends_its_login_and_only_that_one(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    stolen = login(service, ana.phone)
    elsewhere = login(service, ana.phone)
    second = service.refresh(refresh_token=refresh_token_of(stolen))
    third = service.refresh(refresh_token=refresh_token_of(second))

    with pytest.raises(RefreshTokenReused):
        service.refresh(refresh_token=refresh_token_of(stolen))
    with pytest.raises(SessionExpired):  # the rightful holder's newest token is dead too
        service.refresh(refresh_token=refresh_token_of(third))
    for pair in (stolen, second, third):
        with pytest.raises(SessionExpired):
            service.authenticate(access_token=pair.access_token)

    assert service.authenticate(access_token=elsewhere.access_token) == ana
    assert service.refresh(refresh_token=refresh_token_of(elsewhere))
    assert ("token.reuse_detected", {"family": stolen.family_id}) in records(service)


def race_refreshes(wallets: list[Wallet], token: str) -> list[TokenPair | WalletError]:
    """Each wallet spends `token` at the same moment, in its own thread."""
    start = threading.Barrier(len(wallets))
    outcomes: list[TokenPair | WalletError] = []

    def spend(built: Wallet) -> None:
        start.wait(30)
        try:
            outcomes.append(built.service.refresh(refresh_token=token))
        except WalletError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=spend, args=(built,)) for built in wallets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == len(wallets)
    return outcomes


def test_two_refreshes_of_one_token_at_once_never_both_win(db_url: str) -> None:
    wallets = [open_wallet(db_url) for _ in range(2)]  # two engines, like two processes
    try:
        service = wallets[0].service
        ana = register(service)
        for _ in range(3):
            pair = login(service, ana.phone)
            outcomes = race_refreshes(wallets, refresh_token_of(pair))
            won = [outcome for outcome in outcomes if isinstance(outcome, TokenPair)]
            lost = [outcome for outcome in outcomes if not isinstance(outcome, TokenPair)]
            assert len(won) <= 1
            assert all(
                isinstance(error, RefreshTokenReused | ConcurrencyConflict | DatabaseBusy)
                for error in lost
            ), lost
            if won:  # the loser saw a spent token: the winner's login is ended as well
                assert isinstance(lost[0], RefreshTokenReused)
                with pytest.raises(SessionExpired):
                    service.refresh(refresh_token=refresh_token_of(won[0]))
                with pytest.raises(SessionExpired):
                    service.authenticate(access_token=won[0].access_token)
    finally:
        for built in wallets:
            built.close()


def test_an_unused_refresh_token_lasts_7_days(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = register(service)
    kept = login(service, ana.phone)
    dropped = login(service, ana.phone)
    clock.advance(timedelta(days=7) - SECOND)
    assert service.refresh(refresh_token=refresh_token_of(kept))
    clock.advance(SECOND)
    with pytest.raises(SessionExpired):
        service.refresh(refresh_token=refresh_token_of(dropped))


def test_a_login_ends_after_30_days_however_often_it_refreshes(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service)
    started = clock.now()
    pair = login(service, ana.phone)
    for _ in range(4):  # days 6, 12, 18, 24
        clock.advance(timedelta(days=6))
        pair = service.refresh(refresh_token=refresh_token_of(pair))
        assert service.authenticate(access_token=pair.access_token) == ana
    assert pair.refresh_expires_at == started + timedelta(days=30)
    clock.advance(timedelta(days=6) - SECOND)
    with pytest.raises(TokenExpired):
        service.authenticate(access_token=pair.access_token)
    clock.advance(SECOND)  # day 30
    with pytest.raises(SessionExpired):
        service.refresh(refresh_token=refresh_token_of(pair))


def test_changing_the_password_ends_every_login(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = register(service), register(service)
    logins = [login(service, ana.phone) for _ in range(2)]
    brunos = login(service, bruno.phone)
    service.change_password(ana, current=PASSWORD, new=NEW_PASSWORD)
    for pair in logins:
        with pytest.raises(SessionExpired):
            service.authenticate(access_token=pair.access_token)
        with pytest.raises(SessionExpired):
            service.refresh(refresh_token=refresh_token_of(pair))
    with pytest.raises(InvalidCredentials):
        login(service, ana.phone)
    assert service.authenticate(access_token=login(service, ana.phone, NEW_PASSWORD).access_token)
    assert service.authenticate(access_token=brunos.access_token) == bruno


def test_logging_out_ends_only_that_login(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    leaving, staying = login(service, ana.phone), login(service, ana.phone)
    assert service.logout(refresh_token=refresh_token_of(leaving))
    with pytest.raises(SessionExpired):
        service.authenticate(access_token=leaving.access_token)
    with pytest.raises(SessionExpired):
        service.refresh(refresh_token=refresh_token_of(leaving))
    assert service.authenticate(access_token=staying.access_token) == ana
    assert service.refresh(refresh_token=refresh_token_of(staying))
    assert not service.logout(refresh_token=refresh_token_of(leaving))  # already ended
    assert not service.logout(refresh_token="never-issued")
    assert [action for action, _ in records(service)].count("logout") == 1


# --- signing keys --------------------------------------------------------------------------------
def test_a_rotated_key_verifies_for_15_minutes_more_then_never(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    admin = make_admin(service)
    ana = register(service)
    old = login(service, ana.phone)
    old_kid = tokens.key_id_of(old.access_token)
    # A token of the old key that would otherwise live long: only the key's age ends it.
    long_lived = tokens.sign(
        {**jwt.decode(old.access_token, options={"verify_signature": False}), "exp": 2**40},
        kid=old_kid,
        private_key=stored_private_key(wallet, old_kid),
    )
    assert service.authenticate(access_token=long_lived) == ana

    rotated = service.rotate_signing_key(actor=admin)
    assert rotated.kid != old_kid
    new = login(service, ana.phone)
    assert tokens.key_id_of(new.access_token) == rotated.kid

    clock.advance(ACCESS_TOKEN_LIFETIME - SECOND)
    assert service.authenticate(access_token=old.access_token) == ana
    assert service.authenticate(access_token=long_lived) == ana
    clock.advance(SECOND)
    for token in (old.access_token, long_lived):
        with pytest.raises(InvalidToken):
            service.authenticate(access_token=token)
    assert service.authenticate(access_token=login(service, ana.phone).access_token) == ana
    shown = {info.kid: info for info in service.signing_keys(actor=admin)}
    assert not shown[old_kid].verifies
    assert shown[old_kid].retired_at is not None
    assert shown[rotated.kid].verifies
    assert shown[rotated.kid].retired_at is None
    assert ("signing_key.rotated", {}) in records(service)


def test_the_jwks_publishes_the_keys_that_verify_now(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    admin = make_admin(service)
    old = login(service, admin.phone)
    assert [key["kid"] for key in service.jwks()["keys"]] == [tokens.key_id_of(old.access_token)]

    rotated = service.rotate_signing_key(actor=admin)
    new = login(service, admin.phone)
    jwks = service.jwks()
    assert {key["kid"] for key in jwks["keys"]} == {
        tokens.key_id_of(old.access_token),
        rotated.kid,
    }
    for key in jwks["keys"]:
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["alg"] == "EdDSA"
        assert key["use"] == "sig"
        assert len(jwt.utils.base64url_decode(key["x"])) == 32  # a raw Ed25519 public key
        assert "d" not in key  # never the private half
    assert pyjwt_claims(old.access_token, jwks)["sub"] == admin.user_id
    assert pyjwt_claims(new.access_token, jwks)["sub"] == admin.user_id
    # The new token does not verify under the old key: PyJWT really checks the signature.
    old_jwk = next(key for key in jwks["keys"] if key["kid"] != rotated.kid)
    wrong = {"keys": [{**old_jwk, "kid": rotated.kid}]}
    with pytest.raises(jwt.InvalidSignatureError):
        pyjwt_claims(new.access_token, wrong)

    clock.advance(ACCESS_TOKEN_LIFETIME)
    assert [key["kid"] for key in service.jwks()["keys"]] == [rotated.kid]


def test_a_customer_cannot_rotate_keys(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    before = service.jwks()
    with pytest.raises(PermissionDenied):
        service.rotate_signing_key(actor=ana)
    with pytest.raises(PermissionDenied):
        service.signing_keys(actor=ana)
    assert service.jwks() == before
    assert (
        "permission.denied",
        {"action": "rotate signing keys", "role": "customer", "needs": "manage_security"},
    ) in records(service)


def test_a_token_signed_by_a_key_not_in_the_database_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service)
    real = login(service, ana.phone).access_token
    claims = jwt.decode(real, options={"verify_signature": False})
    foreign, _ = tokens.new_signing_key()
    for kid in (tokens.key_id_of(real), "k-unknown"):
        forged = tokens.sign(claims, kid=kid, private_key=foreign)
        with pytest.raises(InvalidToken):
            service.authenticate(access_token=forged)
    escalated = tokens.sign(
        {**claims, "roles": ["admin"]}, kid=tokens.key_id_of(real), private_key=foreign
    )
    with pytest.raises(InvalidToken):
        service.authenticate(access_token=escalated)
    assert service.authenticate(access_token=real) == ana


def test_a_demoted_admins_token_carries_the_new_role_at_once(wallet: Wallet) -> None:
    service = wallet.service
    first, second = make_admin(service), make_admin(service)
    token = login(service, first.phone).access_token
    assert service.authenticate(access_token=token).role is Role.ADMIN
    service.set_role(actor=second, phone=first.phone, role=Role.CUSTOMER)
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["admin"]
    demoted = service.authenticate(access_token=token)
    assert demoted.role is Role.CUSTOMER
    with pytest.raises(PermissionDenied):
        service.list_users(actor=demoted, limit=5)
