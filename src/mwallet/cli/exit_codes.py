"""Exit codes of `mwallet`, and the one place the core's error tree is mapped onto them."""

from __future__ import annotations

import json
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
    FORBIDDEN = 9  # logged in, but this role may not do that
    INTERRUPTED = 130  # Ctrl-C, as shells count it


CATEGORY_EXIT = {
    Category.INVALID_INPUT: ExitCode.USAGE,
    Category.NOT_AUTHENTICATED: ExitCode.NOT_AUTHENTICATED,
    Category.FORBIDDEN: ExitCode.FORBIDDEN,
    Category.REFUSED: ExitCode.REFUSED,
    Category.NOT_FOUND: ExitCode.NOT_FOUND,
    Category.CONFLICT: ExitCode.CONFLICT,
    Category.INTEGRITY: ExitCode.LEDGER_UNSOUND,
    Category.CONFIGURATION: ExitCode.CONFIGURATION,
}


class Exit(Exception):
    """Leave the CLI with `code` after one line on stderr."""

    def __init__(
        self, code: ExitCode, message: str, error: str = "error", *, retry_key: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error
        self.retry_key = retry_key


def fail(message: str, code: ExitCode = ExitCode.USAGE, error: str = "invalid_input") -> Exit:
    return Exit(code, message, error)


def report(exit_: Exit, *, as_json: bool) -> int:
    if as_json:
        document = {"error": exit_.error, "message": exit_.message}
        if exit_.retry_key is not None:
            document["idempotency_key"] = exit_.retry_key
        line = json.dumps(document, ensure_ascii=False)
    else:
        hint = (
            f" (the money may have moved: retry with --idempotency-key {exit_.retry_key})"
            if exit_.retry_key is not None
            else ""
        )
        line = f"error: {exit_.message}{hint}"
    print(line, file=sys.stderr)
    return int(exit_.code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn the wallet's own errors, and files that cannot be written, into `Exit`."""
    try:
        yield
    except WalletError as exc:
        raise Exit(CATEGORY_EXIT[exc.category], exc.message, exc.code) from exc
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        raise Exit(ExitCode.CONFIGURATION, f"{where}{detail}", "os_error") from exc


# Failures after which a money movement may or may not have happened: the caller must retry
# with the same idempotency key, never with a new one.
_UNCERTAIN = {Category.CONFLICT, Category.CONFIGURATION, Category.INTEGRITY}


@contextmanager
def retry_hint(idempotency_key: str) -> Iterator[None]:
    """Name the idempotency key in the error when a money movement's outcome is unknown."""
    try:
        yield
    except WalletError as exc:
        if exc.category not in _UNCERTAIN:
            raise
        raise Exit(
            CATEGORY_EXIT[exc.category], exc.message, exc.code, retry_key=idempotency_key
        ) from exc
    except KeyboardInterrupt as exc:
        raise Exit(
            ExitCode.INTERRUPTED, "interrupted", "interrupted", retry_key=idempotency_key
        ) from exc
