"""Reports: operators' on-line sessions, the end of each talk on its attempt, the hourly
roll-ups of attempts (docs/reports.md), and the daily sums that staff bill (docs/billing.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
The new tables hold tenant data, so they get the same row-level security as the attempts
(the rule of 0006, which reads the tenant setting once per statement).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = (
    "operator_sessions",
    "report_hours",
    "report_operator_hours",
    "report_rollups",
    "billing_days",
)
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def _seconds(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Float(), nullable=False) for name in names]


def upgrade():
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("talk_ended_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "operator_sessions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("on_line_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("off_line_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("off_line_why", sa.String(32), nullable=True),
        _fk("operator_sessions"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            name="fk_operator_sessions_tenant_id_operator_id_operators",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operator_sessions"),
    )
    op.create_index(
        "ix_operator_sessions_tenant_id_on_line_at",
        "operator_sessions",
        ["tenant_id", "on_line_at"],
    )
    op.create_index(
        "ix_operator_sessions_tenant_id_operator_id_off_line_at",
        "operator_sessions",
        ["tenant_id", "operator_id", "off_line_at"],
    )
    op.create_table(
        "report_hours",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        *_counts(
            "attempts",
            "answered",
            "transferred",
            "rang",
            "talks",
            "very_short",
            "reached",
            "exhausted",
            "billed_seconds",
            "billable_minutes",
        ),
        *_seconds("ring_seconds", "talk_seconds"),
        _fk("report_hours"),
        sa.PrimaryKeyConstraint("tenant_id", "hour", "outcome", "detail", name="pk_report_hours"),
    )
    op.create_table(
        "report_operator_hours",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("transfer_sip_code", sa.Integer(), nullable=False),
        *_counts("offered", "transferred", "failed_transfers", "talks", "very_short"),
        *_seconds("talk_seconds"),
        _fk("report_operator_hours"),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "hour",
            "operator_id",
            "detail",
            "transfer_sip_code",
            name="pk_report_operator_hours",
        ),
    )
    op.create_table(
        "report_rollups",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        _fk("report_rollups"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_report_rollups"),
    )
    op.create_table(
        "billing_days",
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        *_counts("attempts", "answered", "transferred", "billed_seconds", "billable_minutes"),
        _fk("billing_days"),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_billing_days"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_tenant_isolation ON {table} "
                f"USING ({RULE}) WITH CHECK ({RULE})"
            )


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("talk_ended_at")
