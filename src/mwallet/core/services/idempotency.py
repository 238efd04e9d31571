"""Claiming an idempotency key, the first step of every use case that changes something."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from mwallet.core.domain.transfers import IdempotencyRecord
from mwallet.core.errors import DataIntegrityError
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

    The same key with a different request raises IdempotencyKeyReused. The claim belongs to the
    unit of work: if the request is then refused, it rolls back and the key is free again.
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
    produced (IdempotencyKeyReused if it was for a different request)."""
    if earlier is None:
        return None
    result_id = earlier.check_replay(claim.operation, claim.fingerprint)
    if (result := load(result_id)) is None:
        raise DataIntegrityError(
            f"idempotency key {key!r} points at a missing {claim.operation} {result_id}"
        )
    return result
