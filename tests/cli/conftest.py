"""CLI fixtures: `mwallet` in a fresh home, on a fresh database or embedded.

The CLI is a thin door over services that are tested on SQLite and PostgreSQL alike; its own
tests, which pay about a second per `mwallet` process, run on SQLite, except the modules that
choose both databases (`test_commands.py`: the everyday commands end to end on PostgreSQL too;
`test_reports_stats.py`: the operators' reports).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.harness import Cli
from tests.cli.remote import WalletServer

# Where a remote CLI must never look for a database: a local fallback fails loudly.
NO_DATABASE = "sqlite:////nonexistent/remote-cli-must-not-open-a-database.db"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A scenario marked `remote` runs twice: with the CLI on the database, and with the CLI on
    a wallet server (`--server`) that serves that database."""
    if "door" in metafunc.fixturenames and metafunc.definition.get_closest_marker("remote"):
        metafunc.parametrize("door", ["local", "remote"], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The remote twin runs on SQLite only: the HTTP door does not care which database is
    behind the services, and those are tested on both."""
    items[:] = [
        item for item in items
        if not (
            (spec := getattr(item, "callspec", None)) is not None
            and spec.params.get("door") == "remote"
            and spec.params.get("backend") == "postgresql"
        )
    ]  # fmt: skip


@pytest.fixture
def door(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "local"))


@pytest.fixture(scope="session")
def wallet_server() -> Iterator[WalletServer]:
    server = WalletServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, door: str, request: pytest.FixtureRequest) -> Iterator[Cli]:
    """`mwallet` on a fresh initialised USD database (SQLite or PostgreSQL) and an empty home;
    for a `remote` scenario's twin, `mwallet --server` on a server of that database."""
    if door == "local":
        yield Cli(home=tmp_path / "home", db=db_url, cwd=tmp_path)
        return
    server: WalletServer = request.getfixturevalue("wallet_server")
    url = server.serve(db_url)
    try:
        yield Cli(home=tmp_path / "home", db=db_url, cwd=tmp_path,
                  extra_env={"MWALLET_SERVER": url, "MWALLET_DB": NO_DATABASE})  # fmt: skip
    finally:
        server.stop_serving()


@pytest.fixture
def embedded_cli(tmp_path: Path) -> Cli:
    """`mwallet` with no MWALLET_DB: the embedded SQLite file in a home that does not exist yet."""
    return Cli(home=tmp_path / "home", db=None, cwd=tmp_path)
