"""Fixtures: every storage test runs on SQLite and on PostgreSQL, each test on a fresh database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from tests.support import (
    START,
    Template,
    create_pg_database,
    drop_pg_database,
    make_template,
    open_wallet,
    pg_reachable,
    pg_url,
)

BACKENDS = ["sqlite", "postgresql"]


def require_postgres() -> None:
    """Skip when no PostgreSQL answers, except in CI, where a missing server is a failure."""
    if pg_reachable():
        return
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI is set")
    pytest.skip("PostgreSQL is not reachable (set CI=true to make this a failure)")


@contextmanager
def empty_database(backend: str, folder: Path, file: str = "wallet.db") -> Iterator[str]:
    """The URL of a new database with nothing in it, not even the schema (for a test that
    initialises it its own way): a SQLite `file` in `folder`, or a PostgreSQL database of its
    own, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / file}"
        return
    require_postgres()
    name = create_pg_database()
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Template]]:
    made: dict[str, Template] = {}
    yield made
    for template in made.values():
        if template.backend == "postgresql":
            drop_pg_database(template.location)


def _template(backend: str, templates: dict[str, Template], folder: Path) -> Template:
    if backend not in templates:
        if backend == "postgresql":
            require_postgres()
        templates[backend] = make_template(backend, folder)
    return templates[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str,
    templates: dict[str, Template],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> Iterator[str]:
    """The URL of a fresh, migrated, initialised (USD) database of the parametrized backend."""
    template = _template(backend, templates, tmp_path_factory.mktemp("template"))
    with template.fresh_copy(tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def wallet(db_url: str, clock: FixedClock) -> Iterator[Wallet]:
    built = open_wallet(db_url, clock)
    yield built
    built.close()
