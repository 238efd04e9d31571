"""SQL that history and the statistics both read the ledger with: what an entry credited to the
fees accounts, the other party of a transfer seen from one of its postings, and PostgreSQL's
setting for their long reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, case, func, literal_column, select, text

from mwallet.core.db.prepared import Prepared
from mwallet.core.db.tables import accounts, postings, transfers
from mwallet.core.domain.ledger import AccountKind

_ZERO = literal_column("0", BigInteger)  # written into the SQL: no parameter type to guess

# A long history's row estimates make PostgreSQL compile a statement's plan to machine code first
# (JIT), which takes longer than running it: its long reads (a statement's batches, a person's
# statistics) turn it off for the rest of their transaction.
NO_JIT = Prepared(lambda: text("SET LOCAL jit = off"))


def entry_fees(entry_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """What the entry `entry_id` credited to accounts of kind FEES (a transfer's fee). It reads
    the entry's few postings by their key and each account by its key: nothing scans a fees
    account's long list of postings, whatever the planner knows of the tables."""
    fee_posting = postings.alias("fee_posting")
    fee_account = accounts.alias("fee_account")
    return (
        select(
            func.coalesce(
                func.sum(
                    case(
                        (fee_account.c.kind == AccountKind.FEES.value, fee_posting.c.amount),
                        else_=_ZERO,
                    )
                ),
                0,
            )
        )
        .join(fee_account, fee_account.c.id == fee_posting.c.account_id)
        .where(fee_posting.c.entry_id == entry_id)
        .scalar_subquery()
    )


def other_party(amount: ColumnElement[Any]) -> ColumnElement[Any]:
    """The user on the other side of a transfer, from a posting of `amount` in it: the recipient
    of a debit, the sender of a credit (join `transfers` on the posting's entry first)."""
    return case((amount < 0, transfers.c.recipient_user_id), else_=transfers.c.sender_user_id)
