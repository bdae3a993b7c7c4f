"""Enable row-level security on leads and attempts (PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

A second wall behind webapp/tenancy.py: PostgreSQL itself hides the rows of other tenants
from a transaction whose `autocall.tenant_id` setting names one tenant, and refuses to write
them. The portal sets it at the start of every transaction (webapp/tenancy.py); `all` is for
trusted server code (command line, jobs); an empty or missing value sees no row. FORCE makes
the policy apply to the tables' owner too; only superusers bypass it, so the portal must not
connect as one. SQLite has no row-level security: nothing to do there.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("leads", "attempts")
SCOPE = "current_setting('autocall.tenant_id', true)"
# CASE, not a bare cast: 'all' or '' must never reach ::bigint; and the comparison stays
# `tenant_id = <stable expression>`, which the tenant_id indexes can serve.
RULE = (
    f"{SCOPE} = 'all' OR tenant_id = "
    f"CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END"
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_tenant_isolation ON {table} "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY {table}_tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
