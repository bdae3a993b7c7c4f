"""What the operator records when they finish a lead: a result from the tenant's list, and a
comment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEFAULT_RESULTS = "Sale\nNot interested\nCall back\nWrong number"


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("results", sa.Text(), nullable=False, server_default=DEFAULT_RESULTS)
        )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("result", sa.String(100), nullable=True))
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("comment")
        batch.drop_column("result")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("results")
