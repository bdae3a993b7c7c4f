"""Abandoned calls handled as regulators require (docs/pacing.md, "Abandoned calls"): each
campaign holds an answered customer up to its abandon tolerance (seconds, 0 to 10) for an
operator about to be free, and may name a fallback, an extension or number at its PBX (an
announcement, a voicemail, an overflow queue) that an abandoned customer is transferred to.
Existing campaigns get the regulators' 2 s and no fallback (hung up, as before).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("abandon_tolerance_seconds", sa.Float(), nullable=False, server_default="2")
        )
        batch.add_column(sa.Column("fallback_target", sa.String(64), nullable=True))
        batch.create_check_constraint(
            "abandon_tolerance_seconds", "abandon_tolerance_seconds BETWEEN 0 AND 10"
        )


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("abandon_tolerance_seconds", type_="check")
        batch.drop_column("fallback_target")
        batch.drop_column("abandon_tolerance_seconds")
