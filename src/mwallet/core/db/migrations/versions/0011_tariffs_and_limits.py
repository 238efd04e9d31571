"""Tariffs and limits: a fee rule per kind of movement, limits per family and KYC tier, the tier
of each user, and a transfer's fee.

The withdrawal fees and daily limit an admin set before (instance settings) become a flat tariff
per channel and a daily withdrawal limit for every tier.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD_KEYS = ("withdrawal_fee_atm_minor", "withdrawal_fee_agent_minor", "withdrawal_daily_minor")


def upgrade() -> None:
    tariffs = op.create_table(
        "tariffs",
        sa.Column("movement", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("movement", name=op.f("pk_tariffs")),
        sqlite_with_rowid=False,
    )
    limits = op.create_table(
        "limits",
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("daily", sa.BigInteger(), nullable=True),
        sa.Column("monthly", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("family", "tier", name=op.f("pk_limits")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tier", sa.String(length=16), server_default="basic", nullable=False)
        )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fee", sa.BigInteger(), server_default="0", nullable=False))

    bind = op.get_bind()
    settings = sa.table("instance_settings", sa.column("key"), sa.column("value"))
    rows = bind.execute(
        sa.select(settings.c.key, settings.c.value).where(settings.c.key.in_(_OLD_KEYS))
    ).all()
    old = {str(key): str(value) for key, value in rows}
    for key, movement in (
        ("withdrawal_fee_atm_minor", "withdrawal-atm"),
        ("withdrawal_fee_agent_minor", "withdrawal-agent"),
    ):
        if int(old.get(key) or 0) > 0:
            rule = {"bands": [[None, int(old[key]), 0]], "min": 0, "max": None}
            bind.execute(
                tariffs.insert().values(
                    movement=movement, rule=json.dumps(rule, separators=(",", ":")), updated_at=0
                )
            )
    if old.get("withdrawal_daily_minor"):
        for tier in ("basic", "verified"):
            bind.execute(
                limits.insert().values(
                    family="withdrawal",
                    tier=tier,
                    daily=int(old["withdrawal_daily_minor"]),
                    monthly=None,
                )
            )
    bind.execute(settings.delete().where(settings.c.key.in_(_OLD_KEYS)))


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("fee")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("tier")
    op.drop_table("limits")
    op.drop_table("tariffs")
