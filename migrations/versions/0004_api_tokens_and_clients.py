"""API tokens and OAuth clients: how a tenant's CRM authenticates to the REST API.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

- api_clients: OAuth 2 clients (client credentials grant) of a tenant; only the SHA-256 of
  the secret is kept;
- api_tokens: bearer tokens, made by an admin (no client, no expiry) or issued to a client
  (short-lived); only the SHA-256 of the secret is kept. A composite foreign key keeps a
  token in its client's tenant, and deleting the client deletes its tokens.

No row-level security on these two: a request's bearer is looked up before its tenant is
known (like `users` at sign-in), and the portal reads them through webapp/tenancy.py.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_key(table):
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade():
    op.create_table(
        "api_clients",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_key("api_clients"),
        sa.PrimaryKeyConstraint("id", name="pk_api_clients"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_api_clients_tenant_id_id"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_key("api_tokens"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "client_id"],
            ["api_clients.tenant_id", "api_clients.id"],
            name="fk_api_tokens_tenant_id_client_id_api_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_tenant_id_client_id", "api_tokens", ["tenant_id", "client_id"])


def downgrade():
    op.drop_index("ix_api_tokens_tenant_id_client_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("api_clients")
