"""Row-level security on the tables that still had none: tenants, users, operators, teams,
API tokens and API clients (PostgreSQL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

The rule of 0006 (the tenant setting read once per statement): a transaction whose
`autocall.tenant_id` names a tenant sees and writes only that tenant's rows, `all` sees every
row, anything else none. A tenant's row is its own (`id`); users without a tenant (platform
staff) are seen only with `all`. The few reads that must find a row before its tenant is
known (sign-in by email, the session's user, reset links, API credentials) say so in the
code, each in a narrow `all` scope (webapp/tenancy.py `across_tenants`); signup takes its new
tenant's id from the sequence first and acts for that tenant alone. SQLite has no row-level
security: nothing to do there.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCOPE = "current_setting('autocall.tenant_id', true)"
#: Table -> its column naming the tenant.
TABLES = {
    "tenants": "id",
    "users": "tenant_id",
    "teams": "tenant_id",
    "operators": "tenant_id",
    "api_clients": "tenant_id",
    "api_tokens": "tenant_id",
}


def _rule(column: str) -> str:
    return (
        f"(SELECT {SCOPE}) = 'all' OR {column} = "
        f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
    )


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_tenant_isolation ON {table} "
            f"USING ({_rule(column)}) WITH CHECK ({_rule(column)})"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in reversed(TABLES):
        op.execute(f"DROP POLICY {table}_tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
