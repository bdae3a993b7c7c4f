"""The hourly roll-up of attempts is kept per campaign too, so that each campaign's abandon
rate (its pacing's cap) and its reports are read from the roll-up; the hours rolled up so
far are the default campaign's, where every attempt before campaigns was.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = ["tenant_id", "hour", "outcome", "detail"]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    with op.batch_alter_table("report_hours") as batch:
        batch.add_column(sa.Column("campaign_id", BigId, nullable=True))
    op.execute(
        "UPDATE report_hours SET campaign_id = (SELECT c.id FROM campaigns c "
        "WHERE c.tenant_id = report_hours.tenant_id AND c.is_default)"
    )
    with op.batch_alter_table("report_hours") as batch:
        batch.alter_column("campaign_id", existing_type=BigId, nullable=False)
        batch.drop_constraint("pk_report_hours", type_="primary")
        batch.create_primary_key("pk_report_hours", ["tenant_id", "hour", "campaign_id", *KEY[2:]])


def downgrade():
    # Hours of several campaigns become one row again.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    counts = [
        "attempts", "picked_up", "transferred", "rang", "talks", "very_short", "reached",
        "exhausted", "billed_seconds", "billable_minutes", "ring_seconds", "talk_seconds",
    ]
    op.execute(
        "CREATE TABLE report_hours_merged AS SELECT tenant_id, hour, outcome, detail, "
        + ", ".join(f"SUM({c}) AS {c}" for c in counts)
        + " FROM report_hours GROUP BY tenant_id, hour, outcome, detail"
    )
    op.execute("DELETE FROM report_hours")
    with op.batch_alter_table("report_hours") as batch:
        batch.drop_constraint("pk_report_hours", type_="primary")
        batch.drop_column("campaign_id")
        batch.create_primary_key("pk_report_hours", KEY)
    columns = ", ".join(["tenant_id", "hour", "outcome", "detail", *counts])
    op.execute(f"INSERT INTO report_hours ({columns}) SELECT {columns} FROM report_hours_merged")
    op.execute("DROP TABLE report_hours_merged")
