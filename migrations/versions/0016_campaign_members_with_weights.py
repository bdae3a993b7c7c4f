"""Who works a campaign: operators and teams, each with a weight (docs/engine.md, "Campaigns
and operators"). No rows: every operator works the campaign, so nothing changes for a
company until it divides its operators.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)


def upgrade():
    op.create_table(
        "campaign_members",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=True),
        sa.Column("team_id", BigId, nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["campaigns.tenant_id", "campaigns.id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"], ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "(operator_id IS NULL) <> (team_id IS NULL)", name="operator_or_team"
        ),
        sa.CheckConstraint("weight BETWEEN 1 AND 100", name="weight"),
        sa.UniqueConstraint("tenant_id", "campaign_id", "operator_id"),
        sa.UniqueConstraint("tenant_id", "campaign_id", "team_id"),
    )
    op.create_index(
        "ix_campaign_members_tenant_id_campaign_id",
        "campaign_members",
        ["tenant_id", "campaign_id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE campaign_members ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE campaign_members FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY campaign_members_tenant_isolation ON campaign_members "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    op.drop_index("ix_campaign_members_tenant_id_campaign_id", table_name="campaign_members")
    op.drop_table("campaign_members")
