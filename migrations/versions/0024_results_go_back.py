"""Results go back to the CRM, and may act (docs/portal.md, "Results and what they do"):

- an attempt keeps, beside the operator's result and comment (0007), the time they asked the
  customer to be called back (`call_back_at`), what the result did (`result_action`: the
  result's action when it was recorded) and when Finish was pressed (`result_at`);
- a campaign keeps what each of its results does (`result_actions`, JSON: a result's name ->
  {"action": "do_not_call" | "close" | "retry", "minutes": N for a retry}; a result not
  named does nothing). Existing campaigns get the defaults for the default results they
  still have: Sale and Not interested close the lead, Call back retries after 60 minutes,
  Wrong number puts the number on the do-not-call list.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03

Migrations describe the schema with `sqlalchemy` alone: never import webapp.models here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

#: The default results' actions (webapp/services/results.py: DEFAULT_ACTIONS, as of now).
DEFAULTS = {
    "Sale": {"action": "close"},
    "Not interested": {"action": "close"},
    "Call back": {"action": "retry", "minutes": 60},
    "Wrong number": {"action": "do_not_call"},
}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # the migration reads and writes every tenant's rows
        op.execute("SELECT set_config('autocall.tenant_id', 'all', true)")
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("call_back_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("result_action", sa.String(16)))
        batch.add_column(sa.Column("result_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("result_actions", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    campaigns = sa.table(
        "campaigns",
        sa.column("id", sa.BigInteger),
        sa.column("results", sa.Text),
        sa.column("result_actions", sa.JSON),
    )
    for campaign_id, results in bind.execute(sa.select(campaigns.c.id, campaigns.c.results)).all():
        names = {line.strip() for line in (results or "").splitlines()}
        actions = {name: action for name, action in DEFAULTS.items() if name in names}
        if actions:
            bind.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id)
                .values(result_actions=actions)
            )


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("result_actions")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("result_at")
        batch.drop_column("result_action")
        batch.drop_column("call_back_at")
