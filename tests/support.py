"""Shared helpers for tests: databases to run on, a cheap password hasher, people to register."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.clock import FixedClock
from mwallet.core.crypto import Keyring
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.security import Argon2idHasher
from mwallet.core.services.wallet_service import WalletService

# Still argon2id, at the smallest cost it allows: tests register thousands of users.
FAST_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
PASSWORD = "correct-horse-battery"
# A data key for in-process tests; the CLI's tests use a key file in their MWALLET_HOME.
TEST_KEY = bytes(range(32))
TEST_KEYRING = Keyring([TEST_KEY])
PG_HOST = os.environ.get("MWALLET_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("MWALLET_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("MWALLET_TEST_PG_USER", "postgres")
START = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )


def pg_reachable() -> bool:
    try:
        with pg_admin():
            return True
    except psycopg.OperationalError:
        return False


def create_pg_database(template: str | None = None) -> str:
    name = f"mwallet_test_{uuid.uuid4().hex[:12]}"
    with pg_admin() as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    return name


def drop_pg_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class Template:
    """A migrated, initialised database that tests copy instead of migrating again."""

    backend: str
    location: str  # a SQLite file path, or a PostgreSQL database name

    @contextmanager
    def fresh_copy(self, folder: Path) -> Iterator[str]:
        if self.backend == "sqlite":
            target = folder / f"wallet-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self.location, target)
            yield f"sqlite:///{target}"
            return
        name = create_pg_database(template=self.location)
        try:
            yield pg_url(name)
        finally:
            drop_pg_database(name)


def make_template(backend: str, folder: Path) -> Template:
    if backend == "sqlite":
        path = folder / "template.db"
        url = f"sqlite:///{path}"
        location = str(path)
    else:
        location = create_pg_database()
        url = pg_url(location)
    wallet = build_wallet(url, hasher=FAST_HASHER, clock=FixedClock(START), secrets=TEST_KEYRING)
    wallet.service.init(currency="USD")
    wallet.close()
    if backend == "sqlite":
        # Fold the WAL into the main file so a plain copy carries everything.
        import sqlite3

        with sqlite3.connect(path) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Template(backend, location)


def open_wallet(url: str, clock: FixedClock | None = None) -> Wallet:
    return build_wallet(
        url, hasher=FAST_HASHER, clock=clock or FixedClock(START), secrets=TEST_KEYRING
    )


_phone_counter = iter(range(10**6))


def new_phone() -> str:
    """A valid Mozambican mobile number not used before in this process."""
    n = next(_phone_counter)
    return f"+25884{os.getpid() % 100:02d}{n:05d}"


def register(
    service: WalletService, phone: str | None = None, name: str = "Test User"
) -> Principal:
    """Register a user and log them in; returns their principal."""
    phone = phone or new_phone()
    service.register(
        phone=phone,
        display_name=name,
        email=None,
        password=PASSWORD,
        idempotency_key=f"reg-{uuid.uuid4().hex}",
    )
    return service.login(phone=phone, password=PASSWORD).principal


# An admin as the doors would hand it to the services, for tests about something else.
OPERATOR = Principal("operator", "+258840000000", "Operator", Role.ADMIN)


def make_admin(service: WalletService, phone: str | None = None) -> Principal:
    """Register someone and make them an admin (the first by bootstrap, later ones by an admin)."""
    person = register(service, phone, "Admin User")
    if service.list_users(actor=OPERATOR, limit=1000) and any(
        user.role is Role.ADMIN for user in service.list_users(actor=OPERATOR, limit=1000)
    ):
        service.set_role(actor=OPERATOR, phone=person.phone, role=Role.ADMIN)
    else:
        service.bootstrap_admin(phone=person.phone)
    return service.login(phone=person.phone, password=PASSWORD).principal
