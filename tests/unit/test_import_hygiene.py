"""Layering: the import-linter contracts hold, and the CLI starts without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Loaded by a command when it runs, never by starting the CLI or asking for help.
HEAVY = ["sqlalchemy", "alembic", "psycopg", "textual", "starlette"]


def test_the_import_contracts_are_kept() -> None:
    assert LINT_IMPORTS.exists(), f"import-linter is not installed next to {sys.executable}"
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _modules_loaded_by(code: str) -> set[str]:
    """Run `code` in a fresh interpreter and return the top-level packages it loaded."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded = _modules_loaded_by("import mwallet.cli.main")
    assert "mwallet" in loaded
    assert "typer" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["send", "--help"], ["admin", "--help"]]
)
def test_asking_the_cli_for_help_loads_no_heavy_library(argv: list[str]) -> None:
    loaded = _modules_loaded_by(
        f"""
        from mwallet.cli.main import run
        try:
            run({argv!r})
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    )
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_the_check_would_see_a_heavy_import() -> None:
    # Guards the two tests above against passing because the probe itself is broken.
    loaded = _modules_loaded_by("import mwallet.core.db.engine")
    assert "sqlalchemy" in loaded
