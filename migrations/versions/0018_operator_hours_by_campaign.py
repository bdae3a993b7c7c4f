"""The hourly roll-up of the calls given to operators is kept per campaign too, so that the
operators' and failed-transfer reports can be read for one campaign from the roll-up; the
hours rolled up so far are the default campaign's, where every attempt before campaigns was.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = ["tenant_id", "hour", "operator_id", "detail", "transfer_sip_code"]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    with op.batch_alter_table("report_operator_hours") as batch:
        batch.add_column(sa.Column("campaign_id", BigId, nullable=True))
    op.execute(
        "UPDATE report_operator_hours SET campaign_id = (SELECT c.id FROM campaigns c "
        "WHERE c.tenant_id = report_operator_hours.tenant_id AND c.is_default)"
    )
    with op.batch_alter_table("report_operator_hours") as batch:
        batch.alter_column("campaign_id", existing_type=BigId, nullable=False)
        batch.drop_constraint("pk_report_operator_hours", type_="primary")
        batch.create_primary_key(
            "pk_report_operator_hours", ["tenant_id", "hour", "campaign_id", *KEY[2:]]
        )


def downgrade():
    # Hours of several campaigns become one row again.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    counts = [
        "offered", "transferred", "failed_transfers", "talks", "very_short", "talk_seconds",
        "wrap_ups", "wrap_up_seconds",
    ]
    op.execute(
        "CREATE TABLE report_operator_hours_merged AS SELECT "
        + ", ".join(KEY)
        + ", "
        + ", ".join(f"SUM({c}) AS {c}" for c in counts)
        + " FROM report_operator_hours GROUP BY "
        + ", ".join(KEY)
    )
    op.execute("DELETE FROM report_operator_hours")
    with op.batch_alter_table("report_operator_hours") as batch:
        batch.drop_constraint("pk_report_operator_hours", type_="primary")
        batch.drop_column("campaign_id")
        batch.create_primary_key("pk_report_operator_hours", KEY)
    columns = ", ".join([*KEY, *counts])
    op.execute(
        f"INSERT INTO report_operator_hours ({columns}) "
        f"SELECT {columns} FROM report_operator_hours_merged"
    )
    op.execute("DROP TABLE report_operator_hours_merged")
