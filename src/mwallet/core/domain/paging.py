"""How much one read may return: every listing takes a limit between 1 and `MAX_PAGE`; a page
after a given id takes an id, never any text that happens to sort somewhere."""

from __future__ import annotations

from mwallet.core.domain.ids import is_id
from mwallet.core.errors import InvalidInput, quoted

MAX_PAGE = 1000


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"the limit must be between 1 and {MAX_PAGE}")
    return limit


def check_page_after(last_id: str | None, what: str) -> str | None:
    """The id a page starts after: one the previous page gave (a tampered or garbled one would
    silently start the list somewhere else)."""
    if last_id is not None and not is_id(last_id):
        shown = quoted(last_id)
        raise InvalidInput(f"{shown} is not a {what} id: page after an id the last page showed")
    return last_id
