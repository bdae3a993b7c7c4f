"""The engine's view of a tenant's settings, read by the store as the engine host reads it."""

from __future__ import annotations

from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.models import Tenant
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox


def test_the_engine_reads_the_sip_account_and_operators(app, database_url, tenant_a):
    box = SecretBox(DEV_ENCRYPTION_KEY)
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        tenant.sip_host, tenant.sip_port = "pbx.example.com", 5070
        tenant.sip_username, tenant.sip_outbound_proxy = "trunk", "10.0.0.1:5080"
        tenant.sip_password_encrypted = box.encrypt("s3cret")
        db.session.commit()
    store = DialingStore(database_url, box)
    try:
        settings = store.settings(tenant_a.id)
    finally:
        store.close()
    account = settings.account
    assert (account.host, account.port, account.username, account.password) == (
        "pbx.example.com", 5070, "trunk", "s3cret")  # fmt: skip
    assert account.outbound_proxy == ("10.0.0.1", 5080)
    assert settings.operators == {tenant_a.operator_id: "101"}
    assert settings.retry_minutes == {"no_answer": 90, "busy": 5, "unavailable": 90,
                                      "technical_error": 10}  # fmt: skip
