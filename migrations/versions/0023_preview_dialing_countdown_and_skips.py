"""Preview dialing (docs/pacing.md, "Preview"): a campaign may choose the pacing mode
`preview`, with a countdown after which a lead shown to an operator is dialed by itself
(0: none); a lead an operator skipped keeps why and when.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

BEFORE = "pacing_mode IN ('multiplier', 'progressive', 'predictive')"
AFTER = "pacing_mode IN ('multiplier', 'progressive', 'predictive', 'preview')"


def upgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column(
                "preview_countdown_seconds", sa.Integer(), nullable=False, server_default="0"
            )
        )
        batch.drop_constraint("pacing_mode", type_="check")
        batch.create_check_constraint("pacing_mode", AFTER)
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("skip_reason", sa.String(16), nullable=True))
        batch.add_column(sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.execute("UPDATE campaigns SET pacing_mode = 'progressive' WHERE pacing_mode = 'preview'")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("skipped_at")
        batch.drop_column("skip_reason")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("pacing_mode", type_="check")
        batch.create_check_constraint("pacing_mode", BEFORE)
        batch.drop_column("preview_countdown_seconds")
