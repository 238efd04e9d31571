"""Problem+json answers back into the core's own errors, so a remote command fails with the same
exit code, error code and message as a local one: the server's `type` ends with the error's
stable code, and its `detail` is the error's message."""

from __future__ import annotations

from typing import Any

import httpx

from mwallet.core import errors
from mwallet.core.errors import Category, WalletError

# The server's status when the code is not one of ours (a refusal at the HTTP layer).
_BY_STATUS = {
    400: Category.INVALID_INPUT,
    401: Category.NOT_AUTHENTICATED,
    403: Category.FORBIDDEN,
    404: Category.NOT_FOUND,
    409: Category.REFUSED,
    413: Category.INVALID_INPUT,
    422: Category.INVALID_INPUT,
    429: Category.REFUSED,
}


class RemoteError(WalletError):
    """An error the server named with a code this client does not know (a newer server)."""

    def __init__(self, message: str, *, code: str, category: Category) -> None:
        super().__init__(message)
        self.code = code
        self.category = category


def error_from(response: httpx.Response) -> WalletError:
    """The core error a problem+json answer stands for."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return RemoteError(
            f"the server answered {response.status_code} {response.reason_phrase}",
            code="server_error", category=_category(response.status_code),
        )  # fmt: skip
    code = str(body["type"]).rsplit("/", 1)[-1]
    detail = str(body.get("detail") or code.replace("_", " "))
    if errors.error_class(code) is None:
        return RemoteError(detail, code=code, category=_category(response.status_code))
    return errors.error_named(code, detail)


def _category(status: int) -> Category:
    if status >= 500:
        return Category.CONFLICT if status == 503 else Category.CONFIGURATION
    return _BY_STATUS.get(status, Category.REFUSED)
