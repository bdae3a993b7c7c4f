"""The regulatory window of the abandon rate: the tenant's abandon rate is measured over the
last 24 hours or the last 30 days (predictive pacing keeps it under the cap).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("abandon_rate_window_days", sa.Integer(), nullable=False,
                      server_default="30")
        )


def downgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("abandon_rate_window_days")
