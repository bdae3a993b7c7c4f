"""TCP and TLS for real (docs/portal.md, "SIP accounts"; docs/sip.md, "Transports"): a SIP
account gets the CA bundle (PEM) its PBX's TLS certificate must chain to, empty for the
system's CAs, and whether its URIs use sips:. Existing accounts keep UDP (or whatever they
chose), the system's CAs and sip:.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sip_accounts") as batch:
        batch.add_column(sa.Column("tls_ca_pem", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("use_sips", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("sip_accounts") as batch:
        batch.drop_column("use_sips")
        batch.drop_column("tls_ca_pem")
