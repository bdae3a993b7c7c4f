"""One word, one meaning (docs/architecture.md, "Words"): the reports' count of calls the
customer picked up is `picked_up` (the outcome `answered` means picked up *and* handed to an
operator), and the tenant's ceiling on calls in flight is `max_calls_at_once`, as the
settings page says ("Most calls at once").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
Renames only: no row changes, and the roll-ups keep what they hold.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: (table, old column, new column)
RENAMES = (
    ("report_hours", "answered", "picked_up"),
    ("billing_days", "answered", "picked_up"),
    ("tenants", "max_concurrent_calls", "max_calls_at_once"),
)


def upgrade():
    for table, old, new in RENAMES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(old, new_column_name=new)


def downgrade():
    for table, old, new in reversed(RENAMES):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(new, new_column_name=old)
