"""`mwallet admin keys|clients`, `mwallet token`, and the CLI's own session refresh, through the
real entry point.

Signing keys rotate with old tokens still verifying; the data key re-seals every stored secret,
from the key file (embedded) or MWALLET_SECRET_KEY (a shared database); OAuth clients get tokens
with their secret; an expired access token is refreshed once, even by two commands at once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mwallet.cli import session_file
from mwallet.cli.exit_codes import ExitCode
from mwallet.core.clock import FixedClock
from mwallet.core.crypto import key_id
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.errors import SessionExpired
from tests.cli.harness import Cli, count_rows, seed_user
from tests.cli.test_two_factor import Authenticator, enable_in_process
from tests.support import PASSWORD, TEST_KEY, new_phone, open_wallet

USAGE = ExitCode.USAGE
NOT_AUTHENTICATED = ExitCode.NOT_AUTHENTICATED
NOT_FOUND = ExitCode.NOT_FOUND
CONFIGURATION = ExitCode.CONFIGURATION
FORBIDDEN = ExitCode.FORBIDDEN

PASSWORD_LINE = PASSWORD + "\n"
SECRET_ENV = "MWALLET_SECRET_KEY"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt_header(token: str) -> dict[str, Any]:
    header = json.loads(_b64url_decode(token.split(".", maxsplit=1)[0]))
    assert isinstance(header, dict)
    return header


def _saved_session(cli: Cli) -> session_file.SavedSession:
    saved = session_file.load(cli.session_file)
    assert saved is not None
    return saved


def _session_kid(cli: Cli) -> str:
    return str(_jwt_header(_saved_session(cli).access_token)["kid"])


def _keys_in(path: Path) -> list[str]:
    keys = json.loads(path.read_text(encoding="ascii"))["keys"]
    assert isinstance(keys, list)
    return [str(key) for key in keys]


def _with_secret_keys(cli: Cli, *keys: bytes) -> Cli:
    """The same home and database, with MWALLET_SECRET_KEY set to `keys` (the first seals)."""
    value = ",".join(base64.b64encode(key).decode() for key in keys)
    return Cli(
        home=cli.home, db=cli.db, cwd=cli.cwd, extra_env={**cli.extra_env, SECRET_ENV: value}
    )


def _authenticate_now(url: str, access_token: str) -> Principal:
    with open_wallet(url, FixedClock(datetime.now(UTC))) as wallet:
        return wallet.service.authenticate(access_token=access_token)


# --- admin keys rotate / list / jwks -------------------------------------------------------------
def test_signing_keys_rotate_and_old_tokens_keep_verifying(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    ana = seed_user(db_url, funds="5")
    cli.login(ana.phone)
    old_kid = _session_kid(cli)

    assert "may not rotate signing keys" in cli.fails(FORBIDDEN, "admin", "keys", "rotate")
    assert cli.fails_json(FORBIDDEN, "admin", "keys", "list")["error"] == "permission_denied"

    before = admin.ok_json("admin", "keys", "list")
    assert [(key["kid"], key["retired_at"], key["verifies"]) for key in before] == [
        (old_kid, None, True)
    ]
    rotated = admin.ok_json("admin", "keys", "rotate")
    assert set(rotated) == {"kid", "created_at"}
    new_kid = rotated["kid"]
    assert new_kid != old_kid
    listed = {key["kid"]: key for key in admin.ok_json("admin", "keys", "list")}
    assert set(listed) == {old_kid, new_kid}
    assert listed[old_kid]["retired_at"] is not None
    assert listed[old_kid]["verifies"] is True
    assert (listed[new_kid]["retired_at"], listed[new_kid]["verifies"]) == (None, True)
    table = admin.ok("admin", "keys", "list").stdout
    assert re.search(rf"{new_kid}\s.*\ssigns", table)
    assert re.search(rf"{old_kid}\s.*\sverifies", table)

    # Public keys for anyone, logged in or not: both keys verify now.
    jwks = cli.ok("admin", "keys", "jwks").json()
    assert set(jwks) == {"keys"}
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    for key in jwks["keys"]:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert len(_b64url_decode(key["x"])) == 32
        assert "d" not in key  # never the private half

    # Ana's session, signed with the retired key, still works; her next login uses the new key,
    # and the published key verifies its signature.
    assert cli.balance() == "5.00"
    cli.login(ana.phone)
    assert _session_kid(cli) == new_kid
    assert cli.ok_json("whoami")["phone"] == ana.phone
    token = _saved_session(cli).access_token
    signing_input, signature = token.rsplit(".", 1)
    public = next(key for key in jwks["keys"] if key["kid"] == new_kid)
    Ed25519PublicKey.from_public_bytes(_b64url_decode(public["x"])).verify(
        _b64url_decode(signature), signing_input.encode("ascii")
    )

    assert "New signing key" in admin.ok("admin", "keys", "rotate").stdout
    states = [key["retired_at"] is None for key in admin.ok_json("admin", "keys", "list")]
    assert sorted(states) == [False, False, True]


# --- admin keys rotate-data-key ------------------------------------------------------------------
def test_rotate_data_key_with_the_key_file_reseals_and_keeps_one_new_key(
    embedded_cli: Cli,
) -> None:
    cli = embedded_cli
    cli.ok("init")
    olga, ana = new_phone(), new_phone()
    cli.register(olga, "Olga")
    cli.register(ana, "Ana")
    assert cli.ok_json("init", "--admin-phone", olga)["admin"] == olga
    cli.login(ana)
    app = Authenticator(cli.ok_json("2fa", "enable")["secret"])
    cli.ok_json("2fa", "confirm", app.code())

    key_file = cli.home / "data.key"
    first = _keys_in(key_file)
    assert len(first) == 1
    cli.login(olga)
    rotated = cli.ok_json("admin", "keys", "rotate-data-key")
    second = _keys_in(key_file)
    assert len(second) == 1
    assert second != first
    # Ana's TOTP secret and the one signing key are sealed under the new key.
    assert rotated == {"key_id": key_id(base64.b64decode(second[0])), "resealed": 2}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not [path.name for path in cli.home.iterdir() if path.name.startswith(".data.key")]

    said = cli.ok("admin", "keys", "rotate-data-key").stdout
    third = _keys_in(key_file)
    assert len(third) == 1
    assert third[0] not in (first + second)
    assert f"2 secret(s) re-sealed under data key {key_id(base64.b64decode(third[0]))}." in said
    assert SECRET_ENV not in said

    # Only the newest key is left, and everything still opens: Ana's code and the signing key.
    login = ("login", "--phone", ana, "--password-stdin")
    needed = cli.fails_json(NOT_AUTHENTICATED, *login, stdin=PASSWORD_LINE)
    assert needed["error"] == "second_factor_required"
    cli.ok(*login, "--code", app.code(), stdin=PASSWORD_LINE)
    assert cli.ok_json("whoami")["phone"] == ana
    assert cli.ok_json("2fa", "status")["enabled"] is True


def test_a_refused_rotate_data_key_leaves_the_key_file_alone(embedded_cli: Cli) -> None:
    cli = embedded_cli
    cli.ok("init")
    ana = new_phone()
    cli.register(ana)
    cli.login(ana)
    key_file = cli.home / "data.key"
    before = key_file.read_text(encoding="ascii")
    assert "may not rotate the data key" in cli.fails(FORBIDDEN, "admin", "keys", "rotate-data-key")
    assert key_file.read_text(encoding="ascii") == before


def test_rotate_data_key_from_the_environment_reseals_under_its_first_key(
    cli: Cli, db_url: str
) -> None:
    admin = cli.as_admin()
    ana = seed_user(db_url, funds="7")
    app = enable_in_process(db_url, ana)  # sealed with TEST_KEY, as the CLI's environment is
    login = ("login", "--phone", ana.phone, "--password-stdin", "--code")
    cli.ok_json(*login, app.code(), stdin=PASSWORD_LINE)
    assert "may not rotate the data key" in cli.fails(FORBIDDEN, "admin", "keys", "rotate-data-key")

    # One key in the environment: everything is already sealed under it.
    assert admin.ok_json("admin", "keys", "rotate-data-key") == {
        "key_id": key_id(TEST_KEY),
        "resealed": 0,
    }
    assert not (admin.home / "data.key").exists()  # the environment's key, never a key file

    # A new key put first: every secret moves to it (Ana's TOTP secret and each signing key).
    new_key = os.urandom(32)
    sealed = count_rows(db_url, "signing_keys") + count_rows(db_url, "two_factor")
    assert sealed >= 2
    said = _with_secret_keys(admin, new_key, TEST_KEY).ok("admin", "keys", "rotate-data-key")
    assert said.stdout.strip() == (
        f"{sealed} secret(s) re-sealed under data key {key_id(new_key)}. "
        "Old keys can now be removed from MWALLET_SECRET_KEY."
    )
    assert _with_secret_keys(admin, new_key, TEST_KEY).ok_json(
        "admin", "keys", "rotate-data-key"
    ) == {"key_id": key_id(new_key), "resealed": 0}

    # The old key dropped: the new one alone opens everything; the old one alone opens nothing.
    only_new = _with_secret_keys(cli, new_key)
    only_new.ok_json(*login, app.code(), stdin=PASSWORD_LINE)
    assert only_new.balance() == "7.00"
    line = cli.fails(CONFIGURATION, *login, app.code(), stdin=PASSWORD_LINE)
    assert f"data key {key_id(new_key)}, which is not configured" in line


# --- admin clients, and mwallet token ------------------------------------------------------------
def test_clients_get_tokens_with_their_secret_until_disabled(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    atm = admin.ok_json("admin", "clients", "add", "--kind", "atm", "--name", "ATM 1")
    assert set(atm) == {
        "client_id",
        "name",
        "kind",
        "scopes",
        "created_at",
        "disabled_at",
        "client_secret",
    }
    assert (atm["name"], atm["kind"], atm["scopes"], atm["disabled_at"]) == (
        "ATM 1",
        "atm",
        ["atm:withdrawals"],
        None,
    )
    atm_id, atm_secret = atm["client_id"], atm["client_secret"]
    assert len(atm_secret) >= 40

    said = admin.ok("admin", "clients", "add", "--kind", "PARTNER", "--name", "Bank X").stdout
    match = re.search(r"Client (\S+) \(partner, scopes: payments:callbacks\)", said)
    assert match is not None, said
    partner_id = match.group(1)
    found = re.search(r"Secret \(shown once, keep it safe\): (\S+)", said)
    assert found is not None, said
    partner_secret = found.group(1)

    listed = admin.ok("admin", "clients", "list", "--json")
    assert {client["client_id"] for client in listed.json()} == {atm_id, partner_id}
    assert all("client_secret" not in client for client in listed.json())
    table = admin.ok("admin", "clients", "list").stdout
    assert "ATM 1" in table
    assert "Bank X" in table
    for shown in (listed.stdout, table):
        assert atm_secret not in shown
        assert partner_secret not in shown

    def token(client_id: str, *extra: str, secret: str) -> tuple[tuple[str, ...], str]:
        return ("token", "--client-id", client_id, "--client-secret-stdin", *extra), secret + "\n"

    args, stdin = token(atm_id, secret=atm_secret)
    issued = cli.ok(*args, stdin=stdin).json()
    assert set(issued) == {"access_token", "token_type", "expires_in", "expires_at"}
    assert issued["token_type"] == "Bearer"
    assert 890 <= issued["expires_in"] <= 900
    expires_at = datetime.fromisoformat(issued["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(seconds=900))) < timedelta(seconds=60)
    as_atm = _authenticate_now(db_url, issued["access_token"])
    assert (as_atm.user_id, as_atm.role, as_atm.client) == (atm_id, Role.ATM, True)
    assert as_atm.scopes == frozenset({"atm:withdrawals"})

    args, stdin = token(partner_id, "--scope", "payments:callbacks", secret=partner_secret)
    as_partner = _authenticate_now(db_url, cli.ok(*args, stdin=stdin).json()["access_token"])
    assert (as_partner.role, as_partner.scopes) == (Role.PARTNER, frozenset({"payments:callbacks"}))

    # Refusals: one line each, and the same answer for a wrong secret and an unknown client.
    args, stdin = token(atm_id, secret=partner_secret)
    assert cli.fails(NOT_AUTHENTICATED, *args, stdin=stdin) == (
        "error: unknown client or wrong secret"
    )
    args, stdin = token("no-such-client", secret=atm_secret)
    assert cli.fails(NOT_AUTHENTICATED, *args, stdin=stdin) == (
        "error: unknown client or wrong secret"
    )
    args, stdin = token(atm_id, secret=partner_secret)
    assert cli.fails_json(NOT_AUTHENTICATED, *args, stdin=stdin)["error"] == "invalid_client"
    args, stdin = token(atm_id, "--scope", "payments:callbacks", secret=atm_secret)
    assert "'payments:callbacks' is not allowed" in cli.fails(FORBIDDEN, *args, stdin=stdin)
    assert cli.fails_json(FORBIDDEN, *args, stdin=stdin)["error"] == "invalid_scope"
    args, _ = token(atm_id, secret="")
    assert "no client secret" in cli.fails(USAGE, *args, stdin="\n")
    assert "--client-secret-stdin" in cli.fails(USAGE, "token", "--client-id", atm_id)
    assert "unknown client kind 'bank'" in admin.fails(
        USAGE, "admin", "clients", "add", "--kind", "bank", "--name", "X"
    )
    assert (
        admin.fails_json(USAGE, "admin", "clients", "add", "--kind", "atm", "--name", " ")["error"]
        == "invalid_input"
    )
    assert (
        admin.fails_json(
            USAGE,
            "admin",
            "clients",
            "add",
            "--kind",
            "atm",
            "--name",
            "A",
            "--scopes",
            "agent:cash",
        )["error"]
        == "invalid_input"
    )

    ana = seed_user(db_url)
    cli.login(ana.phone)
    denied = cli.fails_json(FORBIDDEN, "admin", "clients", "add", "--kind", "atm", "--name", "Z")
    assert denied == {
        "error": "permission_denied",
        "message": "a customer may not register clients",
    }
    cli.fails(FORBIDDEN, "admin", "clients", "list")
    cli.fails(FORBIDDEN, "admin", "clients", "disable", atm_id)

    # Disabled: no new token, and the one it holds stops working.
    assert admin.ok_json("admin", "clients", "disable", atm_id) == {
        "client_id": atm_id,
        "disabled": True,
    }
    args, stdin = token(atm_id, secret=atm_secret)
    cli.fails(NOT_AUTHENTICATED, *args, stdin=stdin)
    with pytest.raises(SessionExpired):
        _authenticate_now(db_url, issued["access_token"])
    states = {c["client_id"]: c["disabled_at"] for c in admin.ok_json("admin", "clients", "list")}
    assert states[atm_id] is not None
    assert states[partner_id] is None
    assert "disabled" in admin.ok("admin", "clients", "list").stdout
    assert admin.fails_json(NOT_FOUND, "admin", "clients", "disable", "nope")["error"] == (
        "client_not_found"
    )


# --- the CLI's session: refreshed when its access token has expired ------------------------------
def _expired_session(cli: Cli, url: str, phone: str) -> session_file.SavedSession:
    """Log in in-process 20 minutes ago and save that session where the CLI keeps it: its
    access token has expired for the real clock, its refresh token is still good."""
    with open_wallet(url, FixedClock(datetime.now(UTC) - timedelta(minutes=20))) as wallet:
        result = wallet.service.login(phone=phone, password=PASSWORD)
    pair = result.tokens
    assert pair.access_expires_at < datetime.now(UTC)
    assert pair.refresh_token is not None
    assert pair.refresh_expires_at is not None
    saved = session_file.SavedSession(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        user_id=result.principal.user_id,
        phone=result.principal.phone,
        expires_at=pair.refresh_expires_at.isoformat(),
    )
    session_file.save(cli.session_file, saved)
    assert stat.S_IMODE(cli.session_file.stat().st_mode) == 0o600
    return saved


def test_an_expired_access_token_is_refreshed_once_and_a_spent_one_ends_the_session(
    cli: Cli, db_url: str
) -> None:
    ana = seed_user(db_url, funds="3")
    old = _expired_session(cli, db_url, ana.phone)
    kept = cli.home / "old-session.json"
    shutil.copyfile(cli.session_file, kept)
    refresh_tokens = count_rows(db_url, "refresh_tokens")

    assert cli.balance() == "3.00"
    new = _saved_session(cli)
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert (new.user_id, new.phone) == (old.user_id, old.phone)
    assert stat.S_IMODE(cli.session_file.stat().st_mode) == 0o600
    assert count_rows(db_url, "refresh_tokens") == refresh_tokens + 1

    # A live access token: no refresh.
    assert cli.balance() == "3.00"
    assert _saved_session(cli) == new
    assert count_rows(db_url, "refresh_tokens") == refresh_tokens + 1

    # The old file again (a stolen copy): its refresh token is spent, so the login ends, for
    # the copy and for the session it was refreshed into.
    shutil.copyfile(cli.session_file, cli.home / "new-session.json")
    shutil.copyfile(kept, cli.session_file)
    assert cli.fails_json(NOT_AUTHENTICATED, "balance")["error"] == "refresh_token_reused"
    shutil.copyfile(cli.home / "new-session.json", cli.session_file)
    ended = cli.fails_json(NOT_AUTHENTICATED, "whoami")
    assert ended["error"] == "session_expired"
    assert "log in again" in cli.fails(NOT_AUTHENTICATED, "balance")


def test_two_commands_at_once_with_an_expired_token_refresh_it_once(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="4")
    for _ in range(3):
        old = _expired_session(cli, db_url, ana.phone)
        refresh_tokens = count_rows(db_url, "refresh_tokens")
        running = [
            subprocess.Popen(
                [sys.executable, "-m", "mwallet", "balance", "--json"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli.environment(),
                cwd=cli.cwd,
            )
            for _ in range(2)
        ]
        for process in running:
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
            assert stderr == ""
            assert json.loads(stdout)["balance"] == "4.00"
        # One refresh between them: one new refresh token, saved, and the login still live.
        assert count_rows(db_url, "refresh_tokens") == refresh_tokens + 1
        new = _saved_session(cli)
        assert new.refresh_token != old.refresh_token
        assert _authenticate_now(db_url, new.access_token).phone == ana.phone
