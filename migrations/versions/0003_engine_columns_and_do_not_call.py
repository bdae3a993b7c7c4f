"""What the dialing engine needs: ceilings, wrap-up, the do-not-call list, engine ownership.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

- tenants: max_concurrent_calls, max_calls_per_second (ceilings that protect the PBX),
  wrap_up_timeout_seconds, failed_transfers_limit;
- leads: the status `do_not_call`, and last_operator_id (the engine's hint for giving a lead
  back to the operator who served it before);
- attempts: engine (which engine placed the call) and a partial index of attempts in progress,
  which the engine taking a tenant over after a crash closes;
- do_not_call: numbers and prefixes a tenant never dials (row-level security on PostgreSQL).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_STATUSES = "'new', 'dialing', 'retry', 'reached', 'exhausted', 'cancelled'"
NEW_STATUSES = OLD_STATUSES + ", 'do_not_call'"
TENANT_COLUMNS = {
    "max_concurrent_calls": 30,
    "max_calls_per_second": 10,
    "wrap_up_timeout_seconds": 600,
    "failed_transfers_limit": 3,
}
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"{SCOPE} = 'all' OR tenant_id = "
    f"CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END"
)


def upgrade():
    with op.batch_alter_table("tenants") as batch:
        for name, default in TENANT_COLUMNS.items():
            batch.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=str(default))
            )
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("last_operator_id", BigId, nullable=True))
        batch.drop_constraint("ck_leads_status", type_="check")
        batch.create_check_constraint("ck_leads_status", f"status IN ({NEW_STATUSES})")
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("engine", sa.String(64), nullable=True))
    op.create_index(
        "ix_attempts_in_progress",
        "attempts",
        ["tenant_id", "engine"],
        postgresql_where=sa.text("outcome IS NULL"),
        sqlite_where=sa.text("outcome IS NULL"),
    )
    op.create_table(
        "do_not_call",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("prefix", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_do_not_call_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_do_not_call"),
        sa.UniqueConstraint(
            "tenant_id", "number", "prefix", name="uq_do_not_call_tenant_id_number_prefix"
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE do_not_call ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE do_not_call FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY do_not_call_tenant_isolation ON do_not_call "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    op.drop_table("do_not_call")
    op.drop_index("ix_attempts_in_progress", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("engine")
    op.execute("UPDATE leads SET status = 'cancelled' WHERE status = 'do_not_call'")
    with op.batch_alter_table("leads") as batch:
        batch.drop_constraint("ck_leads_status", type_="check")
        batch.create_check_constraint("ck_leads_status", f"status IN ({OLD_STATUSES})")
        batch.drop_column("last_operator_id")
    with op.batch_alter_table("tenants") as batch:
        for name in TENANT_COLUMNS:
            batch.drop_column(name)
