"""One tree of the wallet's own errors.

Each door maps the tree once: the CLI to an exit code and one stderr line, the server (later) to a
problem+json type. `code` is the stable machine name of an error; `category` groups errors so a door
can map whole families at a time.
"""

from __future__ import annotations

from enum import Enum

# How much of a typed value an error message quotes: enough to recognise it, one line in all.
QUOTED_LENGTH = 32


def quoted(typed: str) -> str:
    """A value as typed, quoted for an error message: control characters shown escaped (repr),
    and cut short, so 10,000 characters typed leave one readable line, not the input echoed."""
    if len(typed) > QUOTED_LENGTH:
        typed = typed[: QUOTED_LENGTH - 3] + "..."
    return repr(typed)


class Category(Enum):
    INVALID_INPUT = "invalid_input"
    NOT_AUTHENTICATED = "not_authenticated"
    FORBIDDEN = "forbidden"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INTEGRITY = "integrity"
    CONFIGURATION = "configuration"


class WalletError(Exception):
    """Base of every error the wallet raises on purpose."""

    code: str = "wallet_error"
    category: Category = Category.REFUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- bad input: the request itself is malformed --------------------------------------------------
class InvalidInput(WalletError):
    code = "invalid_input"
    category = Category.INVALID_INPUT


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class AmountTooLarge(InvalidAmount):
    code = "amount_too_large"


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class InvalidPhoneNumber(InvalidInput):
    code = "invalid_phone_number"


class InvalidRole(InvalidInput):
    code = "invalid_role"


class InvalidRegion(InvalidInput):
    code = "invalid_region"


class InvalidEmail(InvalidInput):
    code = "invalid_email"


class InvalidName(InvalidInput):
    code = "invalid_name"


class WeakPassword(InvalidInput):
    code = "weak_password"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"


# --- authentication ------------------------------------------------------------------------------
class NotAuthenticated(WalletError):
    code = "not_authenticated"
    category = Category.NOT_AUTHENTICATED


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class AccountLocked(NotAuthenticated):
    code = "account_locked"


class SessionExpired(NotAuthenticated):
    code = "session_expired"


class InvalidToken(NotAuthenticated):
    """A token that is forged, malformed, signed with the wrong algorithm or key, or for
    another audience; never accepted, whatever it claims."""

    code = "invalid_token"


class TokenExpired(SessionExpired):
    """A well-formed access token past its `exp`: refresh it."""

    code = "token_expired"


class RefreshTokenReused(NotAuthenticated):
    """A refresh token used a second time: the whole session it belongs to has been ended."""

    code = "refresh_token_reused"


class SecondFactorRequired(NotAuthenticated):
    """Two-factor authentication is on: this needs a current code from the authenticator."""

    code = "second_factor_required"


class InvalidSecondFactor(NotAuthenticated):
    code = "invalid_second_factor"


class InvalidClientCredentials(NotAuthenticated):
    code = "invalid_client"


# RFC 8628 §3.5: what a device polling for its tokens is told, by these very codes.
class AuthorizationPending(NotAuthenticated):
    """The person has not answered on the verification page yet: poll again later."""

    code = "authorization_pending"


class SlowDown(AuthorizationPending):
    """Polled sooner than the interval: the interval has grown by 5 seconds."""

    code = "slow_down"


class DeviceAccessDenied(NotAuthenticated):
    """The person refused the device on the verification page."""

    code = "access_denied"


class DeviceCodeExpired(SessionExpired):
    code = "expired_token"


# --- authenticated, but not allowed -------------------------------------------------------------
class PermissionDenied(WalletError):
    code = "permission_denied"
    category = Category.FORBIDDEN


class ScopeNotAllowed(PermissionDenied):
    """A client asked for a scope its registration does not grant."""

    code = "invalid_scope"


# --- refused by a business rule ------------------------------------------------------------------
class Refused(WalletError):
    code = "refused"
    category = Category.REFUSED


class InsufficientFunds(Refused):
    code = "insufficient_funds"


class SelfTransfer(Refused):
    code = "self_transfer"


class UnknownRecipient(Refused):
    code = "unknown_recipient"


class WalletFrozen(Refused):
    code = "wallet_frozen"


class WalletClosed(Refused):
    code = "wallet_closed"


class CurrencyMismatch(Refused):
    code = "currency_mismatch"


class PhoneAlreadyRegistered(Refused):
    code = "phone_already_registered"


class IdempotencyKeyReused(Refused):
    """The same idempotency key was sent with a different request."""

    code = "idempotency_key_reused"


class BalanceLimitReached(Refused):
    code = "balance_limit_reached"


class TwoFactorAlreadyOn(Refused):
    code = "two_factor_already_on"


class TwoFactorNotOn(Refused):
    code = "two_factor_not_on"


class LimitReached(Refused):
    """The movement would pass one of the user's daily or monthly limits."""

    code = "limit_reached"


class WithdrawalLimitReached(LimitReached):
    code = "withdrawal_limit_reached"


class WithdrawalNotPending(Refused):
    """Already paid out, being paid out, cancelled, expired or blocked."""

    code = "withdrawal_not_pending"


class WithdrawalExpired(WithdrawalNotPending):
    code = "withdrawal_expired"


class WrongPin(Refused):
    code = "wrong_pin"


class TerminalLocked(Refused):
    code = "terminal_locked"


class CannotDispense(Refused):
    """The ATM's cassettes cannot make the amount (or are empty)."""

    code = "cannot_dispense"


class OutOfCash(CannotDispense):
    """The ATM's cassettes are empty: nothing can be paid out until they are loaded."""

    code = "out_of_cash"


class CashNotDispensed(Refused):
    """The dispenser failed (or the agent could not pay): the withdrawal was reversed."""

    code = "cash_not_dispensed"


class WalletNotEmpty(Refused):
    code = "wallet_not_empty"


class UnknownFundingSource(InvalidInput):
    code = "unknown_funding_source"


# --- not found -----------------------------------------------------------------------------------
class NotFound(WalletError):
    code = "not_found"
    category = Category.NOT_FOUND


class NotificationNotFound(NotFound):
    code = "notification_not_found"


class BillerNotFound(NotFound):
    code = "biller_not_found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class ClientNotFound(NotFound):
    code = "client_not_found"


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"


class UnknownWithdrawalCode(NotFound):
    code = "unknown_withdrawal_code"


class TerminalNotFound(NotFound):
    code = "terminal_not_found"


# --- conflicts: another writer got there first ---------------------------------------------------
class ConcurrencyConflict(WalletError):
    """A transient clash with a concurrent writer; the whole unit of work may be retried."""

    code = "concurrency_conflict"
    category = Category.CONFLICT


class DatabaseBusy(WalletError):
    """The database stayed locked past its wait; not retried, since the wait already happened."""

    code = "database_busy"
    category = Category.CONFLICT


# --- the books do not add up ---------------------------------------------------------------------
class DataIntegrityError(WalletError):
    """Stored data contradicts itself; a bug, never a user's mistake."""

    code = "data_integrity"
    category = Category.INTEGRITY


class LedgerInvariantBroken(DataIntegrityError):
    """A movement that would break double entry."""

    code = "ledger_invariant_broken"


# --- configuration and storage -------------------------------------------------------------------
class ConfigurationError(WalletError):
    code = "configuration_error"
    category = Category.CONFIGURATION


class StorageUnavailable(ConfigurationError):
    """The database cannot be reached, opened or logged into."""

    code = "storage_unavailable"


class KeysUnavailable(ConfigurationError):
    """The auth service's published keys cannot be fetched, so no token can be checked."""

    code = "keys_unavailable"


class SecretKeyError(ConfigurationError):
    """The data key is missing, malformed, or not the one the stored secrets were sealed with."""

    code = "secret_key_error"


class AlreadyInitialized(ConfigurationError):
    code = "already_initialized"


def error_class(code: str) -> type[WalletError] | None:
    """The error class whose `code` is `code`, among those imported so far, or None.

    Asked on error paths only (the whole tree is walked each time), so an error class of a
    module imported later is found too."""
    waiting: list[type[WalletError]] = [WalletError]
    while waiting:
        kind = waiting.pop()
        if kind.code == code:
            return kind
        waiting.extend(kind.__subclasses__())
    return None


def error_named(code: str, message: str) -> WalletError:
    """The error whose `code` is `code`, saying `message`: a refusal kept under an idempotency
    key raised again, a server's problem read back. A code no class has (any more) comes back as a
    plain `Refused` that still carries it."""
    kind = error_class(code)
    if kind is None:
        error: WalletError = Refused(message)
        error.code = code
        return error
    error = kind.__new__(kind)  # some kinds may take more than a message; it is all there is here
    WalletError.__init__(error, message)
    return error
