"""Exit codes of `mwallet`, and the one place the core's error tree is mapped onto them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

from mwallet.core.errors import Category, WalletError


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug: please report it
    USAGE = 2  # bad arguments or input (Typer's own usage errors use 2 too)
    NOT_AUTHENTICATED = 3
    REFUSED = 4  # a business rule said no: insufficient funds, frozen wallet, ...
    NOT_FOUND = 5
    CONFLICT = 6  # lost too many races with concurrent writers; safe to retry
    LEDGER_UNSOUND = 7  # `admin ledger verify` found a problem
    CONFIGURATION = 8  # database unreachable, not initialised, bad settings


CATEGORY_EXIT = {
    Category.INVALID_INPUT: ExitCode.USAGE,
    Category.NOT_AUTHENTICATED: ExitCode.NOT_AUTHENTICATED,
    Category.REFUSED: ExitCode.REFUSED,
    Category.NOT_FOUND: ExitCode.NOT_FOUND,
    Category.CONFLICT: ExitCode.CONFLICT,
    Category.INTEGRITY: ExitCode.LEDGER_UNSOUND,
    Category.CONFIGURATION: ExitCode.CONFIGURATION,
}


class Exit(Exception):
    """Leave the CLI with `code` after one line on stderr."""

    def __init__(self, code: ExitCode, message: str, error: str = "error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error


def fail(message: str, code: ExitCode = ExitCode.USAGE, error: str = "invalid_input") -> Exit:
    return Exit(code, message, error)


def report(exit_: Exit, *, as_json: bool) -> int:
    if as_json:
        line = json.dumps({"error": exit_.error, "message": exit_.message}, ensure_ascii=False)
    else:
        line = f"error: {exit_.message}"
    print(line, file=sys.stderr)
    return int(exit_.code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn the wallet's own errors, and a database that cannot be reached, into `Exit`."""
    try:
        yield
    except WalletError as exc:
        raise Exit(CATEGORY_EXIT[exc.category], exc.message, exc.code) from exc
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        raise Exit(ExitCode.CONFIGURATION, f"{where}{detail}", "os_error") from exc
    except Exception as exc:
        # The storage adapter's driver errors (unreachable server, bad credentials) are not
        # the wallet's own; name them in one line, and keep the traceback for MWALLET_DEBUG.
        if os.environ.get("MWALLET_DEBUG") or not _is_database_error(exc):
            raise
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise Exit(ExitCode.CONFIGURATION, f"database error: {detail}", "database_error") from exc


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3"))
