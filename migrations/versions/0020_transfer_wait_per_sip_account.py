"""The wait for a transfer's result becomes a setting of each SIP account (docs/portal.md,
"SIP accounts"; docs/engine.md, "The transfer's result"): how many seconds the engine waits
for the PBX's final NOTIFY after its REFER before it writes the transfer as timed out. Where
the PBX passes the REFER on to the customer's phone, that NOTIFY comes only when the operator
answers, which took longer than the 10 s the engine waited before. Existing accounts get the
new default, 30 s.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""


import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sip_accounts") as batch:
        batch.add_column(
            sa.Column("transfer_wait_seconds", sa.Integer(), nullable=False, server_default="30")
        )
        batch.create_check_constraint(
            "transfer_wait_seconds", "transfer_wait_seconds BETWEEN 5 AND 120"
        )


def downgrade():
    with op.batch_alter_table("sip_accounts") as batch:
        batch.drop_constraint("transfer_wait_seconds", type_="check")
        batch.drop_column("transfer_wait_seconds")
