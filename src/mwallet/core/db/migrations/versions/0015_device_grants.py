"""Device authorization grants (RFC 8628): how the remote CLI logs in without a password.

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_grants",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("device_digest", sa.String(length=64), nullable=False),
        sa.Column("user_code", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_device_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_grants")),
        sa.UniqueConstraint("device_digest", name=op.f("uq_device_grants_device_digest")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_device_grants_user_code"), "device_grants", ["user_code"])


def downgrade() -> None:
    op.drop_index(op.f("ix_device_grants_user_code"), table_name="device_grants")
    op.drop_table("device_grants")
