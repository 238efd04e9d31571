"""Errors as `application/problem+json` (RFC 9457): one stable `type` per domain error code, the
HTTP status by the error's category, and never a stack trace."""

from __future__ import annotations

from starlette.responses import JSONResponse

from mwallet.core.errors import Category, WalletError

TYPE_BASE = "https://mwallet.dev/problems/"
STATUS = {
    Category.INVALID_INPUT: 400,
    Category.NOT_AUTHENTICATED: 401,
    Category.FORBIDDEN: 403,
    Category.REFUSED: 409,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 503,  # lost too many races: try again
    Category.INTEGRITY: 500,
    Category.CONFIGURATION: 503,
}
# Codes whose status is not their category's.
SPECIAL = {
    "idempotency_key_reused": 422,
    "account_locked": 429,
    "insufficient_funds": 422,
    "invalid_amount": 422,
    "amount_too_large": 422,
}


class Problem(Exception):
    """An HTTP-level refusal (bad JSON, a missing header) before any service is called."""

    def __init__(
        self, status: int, code: str, detail: str, *, retry_after: int | None = None,
        **extra: object,
    ) -> None:  # fmt: skip
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.extra = extra

    def response(self) -> JSONResponse:
        return problem(self.status, self.code, self.detail, retry_after=self.retry_after,
                       **self.extra)  # fmt: skip


def problem(
    status: int, code: str, detail: str, *, retry_after: int | None = None, **extra: object
) -> JSONResponse:
    body = {"type": TYPE_BASE + code, "title": code.replace("_", " "), "status": status,
            "detail": detail, **extra}  # fmt: skip
    if retry_after is None and status in (429, 503):
        retry_after = 60
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)  # fmt: skip


def status_of(error: WalletError) -> int:
    return SPECIAL.get(error.code, STATUS[error.category])


def from_error(error: WalletError) -> JSONResponse:
    return problem(status_of(error), error.code, error.message)
