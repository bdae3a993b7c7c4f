"""The engine's fencing token: `tenants.engine_epoch` grows by one each time an engine starts
for the tenant, and every claim of leads and write of attempts checks it in the same
transaction, so that an engine which lost its lease without knowing it (paused, cut off) is
refused by the database itself (docs/engine.md, "Fencing").

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("engine_epoch", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("engine_epoch")
