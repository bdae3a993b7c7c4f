"""Dialing rules move to the campaign, SIP accounts become a table (docs/portal.md,
"Campaigns"): a tenant may register several SIP accounts, and each campaign has its own SIP
account, retry times, attempts, ring timeout, calling hours and weekdays, start and end
dates, pacing, results and wrap-up. The tenant keeps what is the company's: name, time zone,
region, its dialing switch and its engine's fencing token.

Each tenant with a PBX set gets its first SIP account, named after the PBX, from its SIP
settings and formats; each of its campaigns gets its settings and that account. Downgrade
gives the tenant back the default campaign's settings and the first account.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""


import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCOPE = "current_setting('autocall.tenant_id', true)"
RULE = (
    f"(SELECT {SCOPE}) = 'all' OR tenant_id = "
    f"(SELECT CASE WHEN {SCOPE} ~ '^[0-9]{{1,18}}$' THEN {SCOPE}::bigint END)"
)

#: (tenant column, account column, type, default)
ACCOUNT = (
    ("sip_host", "host", sa.String(255), ""),
    ("sip_port", "port", sa.Integer(), "5060"),
    ("sip_transport", "transport", sa.String(8), "udp"),
    ("sip_username", "username", sa.String(255), ""),
    ("sip_auth_username", "auth_username", sa.String(255), ""),
    ("sip_password_encrypted", "password_encrypted", sa.Text(), None),
    ("sip_outbound_proxy", "outbound_proxy", sa.String(255), ""),
    ("sip_realm", "realm", sa.String(255), ""),
    ("dial_format", "dial_format", sa.String(255), "sip:{number}@{host}"),
    ("refer_format", "refer_format", sa.String(255), "sip:{extension}@{host}"),
    ("refer_headers", "refer_headers", sa.Text(), ""),
)

#: (column, type, default) of the rules the campaign takes from the tenant.
RULES = (
    ("retry_no_answer_minutes", sa.Integer(), "90"),
    ("retry_unavailable_minutes", sa.Integer(), "90"),
    ("retry_busy_minutes", sa.Integer(), "5"),
    ("retry_technical_error_minutes", sa.Integer(), "10"),
    ("max_attempts", sa.Integer(), "5"),
    ("ring_timeout_seconds", sa.Integer(), "30"),
    ("calling_hours_start", sa.Time(), "09:00:00"),
    ("calling_hours_end", sa.Time(), "21:00:00"),
    ("pacing_mode", sa.String(16), "multiplier"),
    ("call_multiplier", sa.Float(), "1.0"),
    ("abandon_rate_cap_percent", sa.Float(), "3.0"),
    ("abandon_rate_window_days", sa.Integer(), "30"),
    ("max_calls_at_once", sa.Integer(), "30"),
    ("max_calls_per_second", sa.Integer(), "10"),
    ("wrap_up_timeout_seconds", sa.Integer(), "600"),
    ("failed_transfers_limit", sa.Integer(), "3"),
    ("results", sa.Text(), "Sale\nNot interested\nCall back\nWrong number"),
    ("hide_numbers", sa.Boolean(), None),
)


def _new_column(name, kind, default, **kw):
    if isinstance(kind, sa.Boolean):
        return sa.Column(name, kind, nullable=False, server_default=sa.false(), **kw)
    if default is None:
        return sa.Column(name, kind, nullable=True, **kw)
    return sa.Column(name, kind, nullable=False, server_default=default, **kw)


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # the migration reads and writes every tenant's rows
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    op.create_table(
        "sip_accounts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *(_new_column(column, kind, default) for _old, column, kind, default in ACCOUNT),
        sa.CheckConstraint("transport IN ('udp', 'tcp', 'tls')", name="transport"),
        sa.UniqueConstraint("tenant_id", "name"),
        sa.UniqueConstraint("tenant_id", "id"),
    )
    columns = ", ".join(column for _old, column, _kind, _default in ACCOUNT)
    olds = ", ".join(old for old, _column, _kind, _default in ACCOUNT)
    op.execute(
        f"INSERT INTO sip_accounts (tenant_id, name, created_at, {columns}) "
        f"SELECT id, substr(sip_host, 1, 100), CURRENT_TIMESTAMP, {olds} FROM tenants "
        "WHERE sip_host <> ''"
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("sip_account_id", BigId, nullable=True))
        for column, kind, default in RULES:
            batch.add_column(_new_column(column, kind, default))
        batch.add_column(_new_column("calling_weekdays", sa.String(7), "1234567"))
        batch.add_column(sa.Column("start_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("end_date", sa.Date(), nullable=True))
    copied = ", ".join(
        f"{column} = (SELECT t.{column} FROM tenants t WHERE t.id = campaigns.tenant_id)"
        for column, _kind, _default in RULES
    )
    op.execute(
        f"UPDATE campaigns SET {copied}, sip_account_id = (SELECT min(a.id) FROM sip_accounts a "
        "WHERE a.tenant_id = campaigns.tenant_id)"
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.create_foreign_key(
            "fk_campaigns_sip_account",
            "sip_accounts",
            ["tenant_id", "sip_account_id"],
            ["tenant_id", "id"],
        )
        batch.create_check_constraint(
            "pacing_mode", "pacing_mode IN ('multiplier', 'progressive', 'predictive')"
        )
        batch.create_check_constraint(
            "calling_weekdays", "length(calling_weekdays) BETWEEN 1 AND 7"
        )
    checks = sa.inspect(op.get_bind()).get_check_constraints("tenants")
    with op.batch_alter_table("tenants") as batch:
        for check in checks:  # on the pacing mode and the transport, as 0001 named them
            if "pacing_mode" in check["sqltext"] or "sip_transport" in check["sqltext"]:
                batch.drop_constraint(op.f(check["name"]), type_="check")
        for old, _column, _kind, _default in ACCOUNT:
            batch.drop_column(old)
        for column, _kind, _default in RULES:
            batch.drop_column(column)
    if postgres:
        op.execute("ALTER TABLE sip_accounts ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE sip_accounts FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY sip_accounts_tenant_isolation ON sip_accounts "
            f"USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    with op.batch_alter_table("tenants") as batch:
        for old, _column, kind, default in ACCOUNT:
            batch.add_column(_new_column(old, kind, default))
        for column, kind, default in RULES:
            batch.add_column(_new_column(column, kind, default))
    first = "(SELECT min(a.id) FROM sip_accounts a WHERE a.tenant_id = tenants.id)"
    account = ", ".join(
        f"{old} = coalesce((SELECT a.{column} FROM sip_accounts a WHERE a.id = {first}), {old})"
        for old, column, _kind, _default in ACCOUNT
    )
    rules = ", ".join(
        f"{column} = (SELECT c.{column} FROM campaigns c "
        "WHERE c.tenant_id = tenants.id AND c.is_default)"
        for column, _kind, _default in RULES
    )
    op.execute(f"UPDATE tenants SET {account}, {rules}")
    with op.batch_alter_table("tenants") as batch:
        batch.create_check_constraint(
            "pacing_mode", "pacing_mode IN ('multiplier', 'progressive', 'predictive')"
        )
        batch.create_check_constraint("sip_transport", "sip_transport IN ('udp', 'tcp', 'tls')")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("fk_campaigns_sip_account", type_="foreignkey")
        batch.drop_constraint("calling_weekdays", type_="check")
        batch.drop_constraint("pacing_mode", type_="check")
        for column in ("end_date", "start_date", "calling_weekdays"):
            batch.drop_column(column)
        for column, _kind, _default in reversed(RULES):
            batch.drop_column(column)
        batch.drop_column("sip_account_id")
    op.drop_table("sip_accounts")
