"""Callbacks that are kept (docs/engine.md, "Callbacks"; docs/portal.md, "Callbacks"): a
lead's promised callback time and, for a personal callback, the operator it waits for; each
attempt says whether it was a callback; each campaign chooses the order of new leads and due
retries and the grace period after which a personal callback goes to anyone. Existing leads
have no callback (their "call back at" from before stays an ordinary retry time), existing
campaigns keep new leads first and get a 30-minute grace period.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("callback_operator_id", BigId, nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(
            sa.Column("callback", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("lead_order", sa.String(16), nullable=False, server_default="new_first")
        )
        batch.add_column(
            sa.Column(
                "callback_grace_minutes", sa.Integer(), nullable=False, server_default="30"
            )
        )
        batch.create_check_constraint(
            "lead_order", "lead_order IN ('new_first', 'retries_first', 'priority')"
        )


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("lead_order", type_="check")
        batch.drop_column("callback_grace_minutes")
        batch.drop_column("lead_order")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("callback")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("callback_operator_id")
        batch.drop_column("callback_at")
