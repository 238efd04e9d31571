"""Use cases of the audit log: read it, and prove it has not been altered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mwallet.core.domain.audit import AuditAnchor, AuditRecord, ChainReport, check_chain
from mwallet.core.errors import InvalidInput
from mwallet.core.services.unit_of_work import UnitOfWork

MAX_SHOWN = 1000


def newest(uow: UnitOfWork, *, limit: int, since: datetime | None) -> Sequence[AuditRecord]:
    if not 1 <= limit <= MAX_SHOWN:
        raise InvalidInput(f"the limit must be between 1 and {MAX_SHOWN}")
    with uow.read_only():
        return uow.audit.newest(limit=limit, since=since)


def verify(uow: UnitOfWork, *, anchor: AuditAnchor | None) -> ChainReport:
    """Walk the whole chain; with an anchor, also catch the newest records being removed."""
    with uow.read_only():  # one snapshot: the head and the records agree with each other
        return check_chain(uow.audit.oldest_first(), anchor, uow.audit.head())
