"""Claiming an idempotency key, the first step of every use case that changes something."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from mwallet.core.domain.transfers import IdempotencyRecord, Refusal
from mwallet.core.errors import DataIntegrityError, WalletError
from mwallet.core.services.unit_of_work import UnitOfWork

T = TypeVar("T")


def claim_or_replay(
    uow: UnitOfWork,
    *,
    scope: str,
    key: str,
    claim: IdempotencyRecord,
    now: datetime,
    load: Callable[[str], T | None],
) -> T | None:
    """Take `key` for this request and return None, or return the result it already produced.

    The same key with a different request raises IdempotencyKeyReused; a key whose request was
    refused raises that refusal again. The claim belongs to the unit of work: a request that fails
    in any other way rolls it back and leaves the key free (see `RefusalsKept`).
    """
    return replay_of(uow.idempotency.claim(scope, key, claim, now), claim, key=key, load=load)


def replay_of(
    earlier: IdempotencyRecord | None,
    claim: IdempotencyRecord,
    *,
    key: str,
    load: Callable[[str], T | None],
) -> T | None:
    """What a claim's outcome means: None (the key is ours now), or the result the key already
    produced (IdempotencyKeyReused if it was for a different request; the first request's refusal
    raised again if it was refused)."""
    if earlier is None:
        return None
    result_id = earlier.check_replay(claim.operation, claim.fingerprint)
    if (result := load(result_id)) is None:
        raise DataIntegrityError(
            f"idempotency key {key!r} points at a missing {claim.operation} {result_id}"
        )
    return result


class RefusalsKept:
    """Around a use case's unit of work: once its key is claimed through it (`claim_or_replay`,
    `replay_of`), a refusal undoes the work but keeps the claim, holding the refusal, and commits
    it; the refusal goes on up.

        with uow, RefusalsKept(uow, scope=user_id, key=key) as kept:
            if (earlier := kept.claim_or_replay(claim, now=now, load=...)) is not None:
                return earlier
            ... the work, which may be refused ...

    Sent again with the same key, the request then gets the same refusal back, as the IETF httpapi
    idempotency-key draft asks (the first answer, whatever it was), instead of running again on
    books that have changed meanwhile. Which refusals are kept: `Refusal.kept_from`. `unless`
    says of a refusal that it must not be kept this time (asked after the undo, on the same
    transaction): the use case is about to try again itself.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        scope: str,
        key: str,
        unless: Callable[[WalletError], bool] | None = None,
    ) -> None:
        self._uow = uow
        self._scope = scope
        self._key = key
        self._unless = unless
        self._marked = False

    def claim_or_replay(
        self, claim: IdempotencyRecord, *, now: datetime, load: Callable[[str], T | None]
    ) -> T | None:
        """`claim_or_replay` of the module with this key; from a claim that took the key on, a
        refusal is kept under it."""
        return self.replay_of(
            self._uow.idempotency.claim(self._scope, self._key, claim, now), claim, load=load
        )

    def replay_of(
        self,
        earlier: IdempotencyRecord | None,
        claim: IdempotencyRecord,
        *,
        load: Callable[[str], T | None],
    ) -> T | None:
        """`replay_of` of the module (for a claim sent ahead with `claim_later`); when the key is
        ours, a refusal from here on is kept under it."""
        replayed = replay_of(earlier, claim, key=self._key, load=load)
        if replayed is None:
            self._uow.savepoint()
            self._marked = True
        return replayed

    def __enter__(self) -> RefusalsKept:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._marked or not isinstance(exc, WalletError):
            return
        refusal = Refusal.kept_from(exc)
        if refusal is None:
            return
        self._uow.rollback_to_savepoint()
        if self._unless is not None and self._unless(exc):
            return
        self._uow.idempotency.keep_refusal(self._scope, self._key, refusal)
        self._uow.commit()
