"""A session generation per user, raised at sign-out and on a new password so that a copied
session cookie stops working; scopes (`read`, `leads`) on API tokens and OAuth clients
(docs/portal.md, "Authentication" and "REST API").

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
Tokens and clients made before this revision get both scopes, so they keep working as they
did. (API tokens already have `expires_at`: OAuth clients' tokens use it, and now an admin
may choose one for a token too.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
    for table in ("api_tokens", "api_clients"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("scopes", sa.String(32), nullable=False, server_default="read leads")
            )


def downgrade():
    for table in ("api_clients", "api_tokens"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("scopes")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
