"""Campaigns: every tenant's leads and attempts belong to a campaign; each tenant gets its
first one, "Default", and every lead and attempt it has is in it (docs/portal.md,
"Campaigns").

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
Row-level security on `campaigns` follows 0006 and 0013 (PostgreSQL only).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # the migration reads and writes every tenant's rows
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    op.create_table(
        "campaigns",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="running"),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state_changed_by_id", BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.CheckConstraint("state IN ('running', 'paused', 'archived')", name="state"),
        sa.UniqueConstraint("tenant_id", "key"),
        sa.UniqueConstraint("tenant_id", "name"),
        sa.UniqueConstraint("tenant_id", "id"),
    )
    op.create_index(
        "ix_campaigns_one_default",
        "campaigns",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )
    op.execute(
        "INSERT INTO campaigns (tenant_id, name, key, state, is_default, created_at, "
        "state_changed_at) SELECT id, 'Default', 'default', 'running', true, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM tenants"
    )
    for table in ("leads", "attempts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("campaign_id", BigId, nullable=True))
        op.execute(
            f"UPDATE {table} SET campaign_id = (SELECT c.id FROM campaigns c "
            f"WHERE c.tenant_id = {table}.tenant_id AND c.is_default)"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("campaign_id", existing_type=BigId, nullable=False)
            batch.create_foreign_key(
                f"fk_{table}_campaign",
                "campaigns",
                ["tenant_id", "campaign_id"],
                ["tenant_id", "id"],
                ondelete="RESTRICT",
            )
    op.create_index(
        "ix_leads_tenant_id_campaign_id_status", "leads", ["tenant_id", "campaign_id", "status"]
    )
    if postgres:
        op.execute("ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE campaigns FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY campaigns_tenant_isolation ON campaigns "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    op.drop_index("ix_leads_tenant_id_campaign_id_status", table_name="leads")
    for table in ("attempts", "leads"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_campaign", type_="foreignkey")
            batch.drop_column("campaign_id")
    op.drop_index("ix_campaigns_one_default", table_name="campaigns")
    op.drop_table("campaigns")
