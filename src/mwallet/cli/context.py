"""What every command needs: where the wallet lives, the service built once, who is logged in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mwallet.cli import session_file
from mwallet.cli.exit_codes import ExitCode, fail
from mwallet.locations import Paths, database_url

if TYPE_CHECKING:
    from mwallet.bootstrap import Wallet
    from mwallet.core.crypto import LazyKeyring
    from mwallet.core.domain.sessions import TokenPair
    from mwallet.core.domain.users import Principal
    from mwallet.core.services.user_service import UserService
    from mwallet.core.services.wallet_service import WalletService
    from mwallet.remote import HttpWalletService

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]
Code = Annotated[
    str | None,
    typer.Option(
        "--code", help="A two-factor code from your authenticator app, or a recovery code."
    ),
]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Send the same key again to retry safely: the money moves at most once.",
    ),
]


@dataclass
class CliState:
    home: Path
    db: str | None
    server: str | None = None  # --server / MWALLET_SERVER: user commands go over HTTP
    _wallet: Wallet | None = field(default=None, repr=False)
    _remote: HttpWalletService | None = field(default=None, repr=False)
    _keyring: LazyKeyring | None = field(default=None, repr=False)

    @property
    def paths(self) -> Paths:
        return Paths(self.home)

    def service(self) -> WalletService:
        """The local database's services: the operators' commands (admin, agents, terminals)
        other than those of `UserService`, and those not offered over HTTP yet."""
        if self.server is not None:
            raise fail(
                "this command works on a local database only, not with --server (MWALLET_SERVER)",
                ExitCode.USAGE,
                "local_only",
            )
        if self._wallet is None:
            from mwallet.bootstrap import build_wallet

            self._wallet = build_wallet(database_url(self.paths, self.db), secrets=self.keyring())
        return self._wallet.service

    def user_service(self) -> UserService:
        """A person's use cases: on the local database, or on the wallet server (--server)."""
        if self.server is None:
            return self.service()
        if self._remote is None:
            from mwallet.remote import HttpWalletService

            self._remote = HttpWalletService(self.server)
        return self._remote

    def device_id(self) -> tuple[str, bool]:
        """This installation's device id (MWALLET_HOME/device.id) and whether it is new (to be
        kept once a login succeeds): the wallet tells its owner when they log in from a device
        it has not seen."""
        import secrets

        try:
            return self.paths.device.read_text("ascii").strip(), False
        except FileNotFoundError:
            return secrets.token_urlsafe(24), True

    def keep_device_id(self, device: str) -> None:
        """Write a new device id (0600); if another command wrote one meanwhile, keep that."""
        import os

        path = self.paths.device
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(device + "\n")

    def keyring(self) -> LazyKeyring:
        """The data key: MWALLET_SECRET_KEY, else MWALLET_HOME/data.key; read on first use."""
        if self._keyring is None:
            from mwallet import secret_keys
            from mwallet.core.crypto import LazyKeyring

            path = self.paths.data_key
            self._keyring = LazyKeyring(lambda: secret_keys.load(path))
        return self._keyring

    def database_label(self) -> str:
        """One name per database, however its URL was spelled (for files kept per database):
        a SQLite file's resolved path, or PostgreSQL's user@host:port/name (no password)."""
        from urllib.parse import urlsplit

        url = database_url(self.paths, self.db)
        parts = urlsplit(url)
        if parts.scheme.startswith("sqlite"):
            return f"sqlite:{Path(parts.path.removeprefix('/')).resolve()}"
        host = parts.hostname or "localhost"
        return f"postgresql:{parts.username or ''}@{host}:{parts.port or 5432}{parts.path}"

    def principal(self) -> Principal:
        """Who is logged in; an expired access token is refreshed (and saved) on the way."""
        from mwallet.core.errors import TokenExpired

        saved = self._saved()
        try:
            return self.user_service().authenticate(access_token=saved.access_token)
        except TokenExpired:
            pass
        with session_file.refreshing(self.paths.session):
            current = self._saved()  # another command may have refreshed it meanwhile
            if current.access_token != saved.access_token:
                try:
                    return self.user_service().authenticate(access_token=current.access_token)
                except TokenExpired:
                    pass
            pair = self.user_service().refresh(refresh_token=current.refresh_token)
            self.save_session(pair, user_id=current.user_id, phone=current.phone)
        return self.user_service().authenticate(access_token=pair.access_token)

    def save_session(self, pair: TokenPair, *, user_id: str, phone: str) -> None:
        if pair.refresh_token is None or pair.refresh_expires_at is None:
            raise ValueError("a login session needs a refresh token")
        session_file.save(
            self.paths.session,
            session_file.SavedSession(
                access_token=pair.access_token,
                refresh_token=pair.refresh_token,
                user_id=user_id,
                phone=phone,
                expires_at=pair.refresh_expires_at.isoformat(),
                server=self.server,
            ),
        )

    def saved_session(self) -> session_file.SavedSession | None:
        """The session file's session, if it was opened where this command goes (a session of
        one server is not used on another, nor on the local database)."""
        saved = session_file.load(self.paths.session)
        return saved if saved is not None and saved.server == self.server else None

    def _saved(self) -> session_file.SavedSession:
        saved = self.saved_session()
        if saved is None:
            elsewhere = session_file.load(self.paths.session)
            if elsewhere is not None:
                where = elsewhere.server or "the local database"
                raise fail(
                    f"you are not logged in here (your session is for {where}): "
                    "run `mwallet login`",
                    ExitCode.NOT_AUTHENTICATED,
                    "not_authenticated",
                )
            raise fail(
                "you are not logged in: run `mwallet login`",
                ExitCode.NOT_AUTHENTICATED,
                "not_authenticated",
            )
        return saved

    def close(self) -> None:
        if self._wallet is not None:
            self._wallet.close()
            self._wallet = None
        if self._remote is not None:
            self._remote.close()
            self._remote = None


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):  # pragma: no cover - the root callback always sets it
        raise RuntimeError("mwallet's root callback did not run")
    return root.obj


def idempotency_key_or_new(given: str | None) -> str:
    """The `--idempotency-key` typed, or a new key when there was none. An empty one is kept, for
    the services to refuse: `--idempotency-key "$KEY"` with KEY unset must not quietly become a
    new key on every run, moving the money again on the retry it was meant for."""
    if given is not None:
        return given
    import secrets

    return f"cli-{secrets.token_hex(12)}"
