"""How much one read may return: every listing takes a limit between 1 and `MAX_PAGE`."""

from __future__ import annotations

from mwallet.core.errors import InvalidInput

MAX_PAGE = 1000


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"the limit must be between 1 and {MAX_PAGE}")
    return limit
