"""Use cases of the audit log: read it, and prove it has not been altered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditAnchor, AuditRecord, ChainReport, check_chain
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.users import Principal
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import UnitOfWork


def newest(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, limit: int, since: datetime | None
) -> Sequence[AuditRecord]:
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read the audit log")
    check_limit(limit)
    with uow.read_only():
        return uow.audit.newest(limit=limit, since=since)


def verify(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, anchor: AuditAnchor | None
) -> ChainReport:
    """Walk the whole chain; with an anchor, also catch the newest records being removed."""
    authorize(uow, clock, actor, Permission.READ_BOOKS, "verify the audit log")
    with uow.read_only():  # one snapshot: the head and the records agree with each other
        return check_chain(uow.audit.oldest_first(), anchor, uow.audit.head())
