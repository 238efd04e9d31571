"""Password hashing and secret tokens: the port the services use, and its argon2id adapter."""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from argon2 import PasswordHasher as _Argon2

# OWASP's argon2id minimum: 19 MiB of memory, two passes, one lane.
OWASP_TIME_COST = 2
OWASP_MEMORY_KIB = 19 * 1024
OWASP_PARALLELISM = 1


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Argon2idHasher:
    """argon2id via argon2-cffi, loaded on first use: commands that check no password skip it."""

    def __init__(
        self,
        *,
        time_cost: int = OWASP_TIME_COST,
        memory_kib: int = OWASP_MEMORY_KIB,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        self.time_cost = time_cost
        self.memory_kib = memory_kib
        self.parallelism = parallelism

    @cached_property
    def _hasher(self) -> _Argon2:
        from argon2 import PasswordHasher, Type

        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(_encoded(password))

    def verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return self._hasher.verify(password_hash, _encoded(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def _encoded(password: str) -> bytes:
    """UTF-8, keeping bytes a terminal could not decode (lone surrogates) instead of failing:
    any text typed as a password hashes and checks, so a check can never crash half-way."""
    return password.encode("utf-8", "surrogatepass")


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored of a bearer token: its SHA-256, so a stolen database holds no live token."""
    return hashlib.sha256(token.encode()).hexdigest()
