"""A refused money-moving request keeps its answer under its idempotency key.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.add_column(sa.Column("refusal_code", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("refusal_message", sa.String(length=400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.drop_column("refusal_message")
        table.drop_column("refusal_code")
