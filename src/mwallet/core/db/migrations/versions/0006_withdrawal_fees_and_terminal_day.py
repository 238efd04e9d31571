"""Withdrawal fees (held with the amount, kept on completion), and a terminal's day: withdrawals
it settled, by the time they were settled.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fee", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_check_constraint(op.f("ck_withdrawals_fee_not_negative"), "fee >= 0")
        batch_op.create_index(
            batch_op.f("ix_withdrawals_terminal_id_updated_at"),
            ["terminal_id", "updated_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawals_terminal_id_updated_at"))
        batch_op.drop_constraint(op.f("ck_withdrawals_fee_not_negative"), type_="check")
        batch_op.drop_column("fee")
