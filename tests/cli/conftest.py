"""CLI fixtures: `mwallet` in a fresh home, on a fresh database or embedded.

The CLI is a thin door over services that are tested on SQLite and PostgreSQL alike; its own
tests, which pay about a second per `mwallet` process, run on SQLite, except the modules that
choose both databases (`test_commands.py`: the everyday commands end to end on PostgreSQL too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.harness import Cli


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    """`mwallet` on a fresh initialised USD database (SQLite or PostgreSQL) and an empty home."""
    return Cli(home=tmp_path / "home", db=db_url, cwd=tmp_path)


@pytest.fixture
def embedded_cli(tmp_path: Path) -> Cli:
    """`mwallet` with no MWALLET_DB: the embedded SQLite file in a home that does not exist yet."""
    return Cli(home=tmp_path / "home", db=None, cwd=tmp_path)
