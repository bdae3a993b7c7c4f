"""The end of the operator's wrap-up on each attempt (the console's Finish), and its sums in
the operators' hourly roll-up, so that the reports count wrap-up as work, not as time free
(docs/reports.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
Hours rolled up before this revision get zeros: no wrap-up end was recorded before it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("wrap_up_ended_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("report_operator_hours") as batch:
        batch.add_column(
            sa.Column("wrap_ups", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("wrap_up_seconds", sa.Float(), nullable=False, server_default="0")
        )


def downgrade():
    with op.batch_alter_table("report_operator_hours") as batch:
        batch.drop_column("wrap_up_seconds")
        batch.drop_column("wrap_ups")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("wrap_up_ended_at")
