"""Create tenants, users, teams, operators, leads and attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.

Every tenant-owned table has a non-null tenant_id and indexes that start with it.
References between tenant-owned rows are composite foreign keys (tenant_id, id), so the
database itself refuses a row that points at another tenant's row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OUTCOMES = "'answered', 'no_answer', 'busy', 'unavailable', 'technical_error'"


def tz_datetime():
    return sa.DateTime(timezone=True)


def tenant_id_column(nullable=False):
    return sa.Column("tenant_id", BigId, nullable=nullable)


def tenant_fk(table):
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade():
    op.create_table(
        "tenants",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", tz_datetime(), nullable=False),
        # SIP account; the password is a Fernet token (key from the deployment's config).
        sa.Column("sip_host", sa.String(255), nullable=False),
        sa.Column("sip_port", sa.Integer(), nullable=False),
        sa.Column("sip_transport", sa.String(8), nullable=False),
        sa.Column("sip_username", sa.String(255), nullable=False),
        sa.Column("sip_auth_username", sa.String(255), nullable=False),
        sa.Column("sip_password_encrypted", sa.Text(), nullable=True),
        sa.Column("sip_outbound_proxy", sa.String(255), nullable=False),
        sa.Column("sip_realm", sa.String(255), nullable=False),
        # Formats.
        sa.Column("dial_format", sa.String(255), nullable=False),
        sa.Column("refer_format", sa.String(255), nullable=False),
        sa.Column("refer_headers", sa.Text(), nullable=False),
        # Retry time per outcome (minutes), attempts, ring timeout.
        sa.Column("retry_no_answer_minutes", sa.Integer(), nullable=False),
        sa.Column("retry_unavailable_minutes", sa.Integer(), nullable=False),
        sa.Column("retry_busy_minutes", sa.Integer(), nullable=False),
        sa.Column("retry_technical_error_minutes", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("ring_timeout_seconds", sa.Integer(), nullable=False),
        # Calling hours and pacing.
        sa.Column("calling_hours_start", sa.Time(), nullable=False),
        sa.Column("calling_hours_end", sa.Time(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("pacing_mode", sa.String(16), nullable=False),
        sa.Column("call_multiplier", sa.Float(), nullable=False),
        sa.Column("abandon_rate_cap_percent", sa.Float(), nullable=False),
        sa.Column("hide_numbers", sa.Boolean(), nullable=False),
        sa.Column("dialing_enabled", sa.Boolean(), nullable=False),
        sa.Column("default_phone_region", sa.String(2), nullable=False),
        sa.CheckConstraint(
            "pacing_mode IN ('multiplier', 'progressive', 'predictive')",
            name="ck_tenants_pacing_mode",
        ),
        sa.CheckConstraint(
            "sip_transport IN ('udp', 'tcp', 'tls')", name="ck_tenants_sip_transport"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )

    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        tenant_id_column(nullable=True),  # null for platform staff only (CHECK below)
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("email_verified_at", tz_datetime(), nullable=True),
        sa.Column("created_at", tz_datetime(), nullable=False),
        sa.Column("last_login_at", tz_datetime(), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'supervisor', 'operator', 'staff')", name="ck_users_role"
        ),
        sa.CheckConstraint(
            "(role = 'staff' AND tenant_id IS NULL) OR (role <> 'staff' AND tenant_id IS NOT NULL)",
            name="ck_users_tenant_matches_role",
        ),
        tenant_fk("users"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_tenant_id_id", "users", ["tenant_id", "id"], unique=True)
    op.create_index("ix_users_tenant_id_role", "users", ["tenant_id", "role"])

    op.create_table(
        "teams",
        sa.Column("id", BigId, nullable=False),
        tenant_id_column(),
        sa.Column("name", sa.String(100), nullable=False),
        tenant_fk("teams"),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_teams_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_teams_tenant_id_name"),
    )

    op.create_table(
        "operators",
        sa.Column("id", BigId, nullable=False),
        tenant_id_column(),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("team_id", BigId, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        tenant_fk("operators"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "team_id"],
            ["teams.tenant_id", "teams.id"],
            name="fk_operators_tenant_id_team_id_teams",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name="fk_operators_tenant_id_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("tenant_id", "extension", name="uq_operators_tenant_id_extension"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_operators_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_operators_tenant_id_user_id"),
    )
    op.create_index("ix_operators_tenant_id_team_id", "operators", ["tenant_id", "team_id"])

    op.create_table(
        "leads",
        sa.Column("id", BigId, nullable=False),
        tenant_id_column(),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=True),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", tz_datetime(), nullable=True),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("created_at", tz_datetime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'dialing', 'retry', 'reached', 'exhausted', 'cancelled')",
            name="ck_leads_status",
        ),
        sa.CheckConstraint(f"last_outcome IN ({OUTCOMES})", name="ck_leads_last_outcome"),
        tenant_fk("leads"),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_leads_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "external_id", name="uq_leads_tenant_id_external_id"),
    )
    op.create_index(
        "ix_leads_tenant_id_status_next_attempt_at",
        "leads",
        ["tenant_id", "status", "next_attempt_at"],
    )
    op.create_index("ix_leads_tenant_id_phone", "leads", ["tenant_id", "phone"])
    op.create_index("ix_leads_tenant_id_created_at", "leads", ["tenant_id", "created_at"])

    op.create_table(
        "attempts",
        sa.Column("id", BigId, nullable=False),
        tenant_id_column(),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=True),
        sa.Column("dialed_uri", sa.String(255), nullable=False),
        sa.Column("refer_to", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("sip_reason", sa.String(255), nullable=True),
        sa.Column("invite_at", tz_datetime(), nullable=False),
        sa.Column("ringing_at", tz_datetime(), nullable=True),
        sa.Column("answer_at", tz_datetime(), nullable=True),
        sa.Column("refer_at", tz_datetime(), nullable=True),
        sa.Column("transfer_result_at", tz_datetime(), nullable=True),
        sa.Column("end_at", tz_datetime(), nullable=True),
        sa.Column("transfer_result", sa.String(16), nullable=True),
        sa.Column("transfer_sip_code", sa.Integer(), nullable=True),
        sa.Column("transfer_sip_reason", sa.String(255), nullable=True),
        sa.CheckConstraint(f"outcome IN ({OUTCOMES})", name="ck_attempts_outcome"),
        sa.CheckConstraint(
            "transfer_result IN ('succeeded', 'failed', 'unconfirmed')",
            name="ck_attempts_transfer_result",
        ),
        tenant_fk("attempts"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "lead_id"],
            ["leads.tenant_id", "leads.id"],
            name="fk_attempts_tenant_id_lead_id_leads",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            name="fk_attempts_tenant_id_operator_id_operators",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
    )
    op.create_index("ix_attempts_tenant_id_lead_id", "attempts", ["tenant_id", "lead_id"])
    op.create_index("ix_attempts_tenant_id_invite_at", "attempts", ["tenant_id", "invite_at"])
    op.create_index(
        "ix_attempts_tenant_id_operator_id_invite_at",
        "attempts",
        ["tenant_id", "operator_id", "invite_at"],
    )


def downgrade():
    # Tables go in the reverse order of their foreign keys; their indexes go with them.
    for table in ("attempts", "leads", "operators", "teams", "users", "tenants"):
        op.drop_table(table)
