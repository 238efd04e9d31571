"""The devices each person has logged in from (a login from a new one is a security notice).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_devices",
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("device_digest", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_known_devices_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "device_digest", name=op.f("pk_known_devices")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("known_devices")
