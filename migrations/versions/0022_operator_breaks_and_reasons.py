"""Operators' breaks (docs/portal.md, "Breaks"; docs/reports.md, "Breaks"): each time an
operator goes off line with a reason (theirs, or a supervisor's who took them off line), a
row with the reason and its start; it ends when they are back on line. A company gets its
own break reasons beside the default ones (Lunch, Training, Meeting, End of shift).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
The new table holds tenant data: the row-level security of 0009.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("break_reasons", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "operator_breaks",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_by_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_operator_breaks_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            name="fk_operator_breaks_tenant_id_operator_id_operators",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["taken_by_id"],
            ["users.id"],
            name="fk_operator_breaks_taken_by_id_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operator_breaks"),
    )
    op.create_index(
        "ix_operator_breaks_tenant_id_started_at", "operator_breaks", ["tenant_id", "started_at"]
    )
    op.create_index(
        "ix_operator_breaks_tenant_id_operator_id_ended_at",
        "operator_breaks",
        ["tenant_id", "operator_id", "ended_at"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE operator_breaks ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE operator_breaks FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY operator_breaks_tenant_isolation ON operator_breaks "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    op.drop_table("operator_breaks")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("break_reasons")
