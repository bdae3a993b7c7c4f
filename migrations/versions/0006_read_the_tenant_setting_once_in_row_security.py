"""Row-level security reads the tenant setting once per statement, not once per row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

The policies of 0002, 0003 and 0005 call current_setting() and a regular expression for every
row a query filters: about 75 ms per 100,000 rows read (bench/pages.py found it: a search of
100,000 leads took 102-153 ms as an ordinary role, 12 ms as a superuser). The same rule with
each part in a scalar subquery is computed once per statement (an InitPlan) and means the
same: `all` sees every row, a tenant's id its rows, anything else none.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("leads", "attempts", "do_not_call", "webhook_endpoints", "webhook_deliveries")
SCOPE = "current_setting('autocall.tenant_id', true)"
PER_ROW = (
    f"{SCOPE} = 'all' OR tenant_id = "
    f"CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END"
)
ONCE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)


def _policies(rule: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(
            f"ALTER POLICY {table}_tenant_isolation ON {table} USING ({rule}) WITH CHECK ({rule})"
        )


def upgrade():
    _policies(ONCE)


def downgrade():
    _policies(PER_ROW)
