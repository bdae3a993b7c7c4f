"""Webhooks: a tenant's endpoints and the log of their deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

- webhook_endpoints: URLs that hear of every finished attempt, with the signing secret
  encrypted by the deployment's key, and an active flag;
- webhook_deliveries: one event for one endpoint and how its tries went; a composite
  foreign key keeps a delivery in its endpoint's tenant, and deleting the endpoint deletes
  its deliveries.

Both have row-level security on PostgreSQL, like do_not_call (0003).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("webhook_endpoints", "webhook_deliveries")
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"{SCOPE} = 'all' OR tenant_id = "
    f"CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END"
)


def _tenant_key(table):
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade():
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret_encrypted", sa.String(500), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_key("webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_webhook_endpoints_tenant_id_id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("endpoint_id", BigId, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("attempt_id", BigId, nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_key("webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_tenant_id_endpoint_id_webhook_endpoints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_endpoint_id",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id"],
    )
    op.create_index("ix_webhook_deliveries_tenant_id_id", "webhook_deliveries", ["tenant_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_tenant_isolation ON {table} "
                f"USING ({RULE}) WITH CHECK ({RULE})"
            )


def downgrade():
    op.drop_index("ix_webhook_deliveries_tenant_id_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_tenant_id_endpoint_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
