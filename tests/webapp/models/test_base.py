"""Every tenant-owned table: non-null tenant_id, and every index starts with it."""

from webapp.extensions import db
from webapp.models import TenantOwned

TENANT_OWNED = {
    "campaign_members",
    "campaigns",
    "sip_accounts",
    "do_not_call",
    "teams",
    "operators",
    "leads",
    "attempts",
    "api_clients",
    "api_tokens",
    "webhook_endpoints",
    "webhook_deliveries",
    "operator_sessions",
    "operator_breaks",
    "report_hours",
    "report_operator_hours",
    "report_rollups",
    "billing_days",
}


def test_tenant_owned_tables_are_the_expected_ones(app):
    tables = {m.__table__.name for m in db.Model.__subclasses__() if issubclass(m, TenantOwned)}
    assert tables == TENANT_OWNED


def test_tenant_id_is_not_null_and_leads_every_index():
    for name in TENANT_OWNED:
        table = db.metadata.tables[name]
        assert table.c.tenant_id.nullable is False
        for index in table.indexes:
            assert index.columns.keys()[0] == "tenant_id", index.name
        for constraint in table.constraints:
            columns = getattr(constraint, "columns", None)
            if columns is not None and constraint.__class__.__name__ == "UniqueConstraint":
                assert columns.keys()[0] == "tenant_id", constraint.name
    users = db.metadata.tables["users"]
    for index in users.indexes:
        assert index.columns.keys()[0] == "tenant_id"
