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
    from mwallet.core.domain.users import Principal
    from mwallet.core.services.wallet_service import WalletService

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
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
    _wallet: Wallet | None = field(default=None, repr=False)

    @property
    def paths(self) -> Paths:
        return Paths(self.home)

    def service(self) -> WalletService:
        if self._wallet is None:
            from mwallet.bootstrap import build_wallet

            self._wallet = build_wallet(database_url(self.paths, self.db))
        return self._wallet.service

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
        saved = session_file.load(self.paths.session)
        if saved is None:
            raise fail(
                "you are not logged in: run `mwallet login`",
                ExitCode.NOT_AUTHENTICATED,
                "not_authenticated",
            )
        return self.service().authenticate(token=saved.token)

    def close(self) -> None:
        if self._wallet is not None:
            self._wallet.close()
            self._wallet = None


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):  # pragma: no cover - the root callback always sets it
        raise RuntimeError("mwallet's root callback did not run")
    return root.obj


def new_idempotency_key() -> str:
    import secrets

    return f"cli-{secrets.token_hex(12)}"
