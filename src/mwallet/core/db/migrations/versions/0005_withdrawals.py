"""Cash withdrawals: terminals and their cassettes, withdrawals, and the instance's own secrets.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "terminals",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=True),
        sa.Column("agent_user_id", sa.String(length=26), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("unknown_codes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_started_at", sa.BigInteger(), nullable=True),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_user_id"], ["users.id"], name=op.f("fk_terminals_agent_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("agent_user_id", name=op.f("uq_terminals_agent_user_id")),
        sa.UniqueConstraint("client_id", name=op.f("uq_terminals_client_id")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "cassettes",
        sa.Column("terminal_id", sa.String(length=26), nullable=False),
        sa.Column("denomination", sa.BigInteger(), nullable=False),
        sa.Column("notes", sa.Integer(), nullable=False),
        sa.CheckConstraint("denomination > 0", name=op.f("ck_cassettes_denomination_positive")),
        sa.CheckConstraint("notes >= 0", name=op.f("ck_cassettes_notes_not_negative")),
        sa.ForeignKeyConstraint(
            ["terminal_id"], ["terminals.id"], name=op.f("fk_cassettes_terminal_id_terminals")
        ),
        sa.PrimaryKeyConstraint("terminal_id", "denomination", name=op.f("pk_cassettes")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("pin_attempts", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=26), nullable=True),
        sa.Column("notes", sa.String(length=255), nullable=True),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("pin_digest", sa.String(length=64), nullable=False),
        sa.Column("nonce_digest", sa.String(length=64), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_withdrawals_amount_positive")),
        sa.ForeignKeyConstraint(
            ["terminal_id"], ["terminals.id"], name=op.f("fk_withdrawals_terminal_id_terminals")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_withdrawals_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_withdrawals_code_digest")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawals_state_expires_at"), ["state", "expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_withdrawals_user_id_created_at"), ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawals_user_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_withdrawals_state_expires_at"))
    op.drop_table("withdrawals")
    op.drop_table("cassettes")
    op.drop_table("terminals")
    op.drop_table("instance_secrets")
