from datetime import time

from webapp.extensions import db
from webapp.models import Tenant


def test_a_new_tenant_has_the_product_defaults(app):
    with app.app_context():
        tenant = Tenant(name="Acme")
        db.session.add(tenant)
        db.session.commit()
        tenant = db.session.get(Tenant, tenant.id)
        assert tenant.sip_port == 5060
        assert tenant.sip_transport == "udp"
        assert tenant.dial_format == "+{number}@{host}:{port}"
        assert tenant.refer_format == "{extension}@{host}:{port}"
        assert tenant.retry_minutes("no_answer") == 90
        assert tenant.retry_minutes("unavailable") == 90
        assert tenant.retry_minutes("busy") == 5
        assert tenant.retry_minutes("technical_error") == 10
        assert tenant.ring_timeout_seconds == 30
        assert tenant.pacing_mode == "multiplier"
        assert tenant.call_multiplier == 1.0
        assert tenant.abandon_rate_cap_percent == 3.0
        assert tenant.calling_hours_start == time(9, 0)
        assert tenant.calling_hours_end == time(21, 0)
        assert tenant.hide_numbers is False
        assert tenant.dialing_enabled is False
        assert not tenant.has_sip_password


def test_repr_never_shows_the_sip_password(app):
    with app.app_context():
        tenant = Tenant(name="Acme", sip_password_encrypted="gAAAA-secret-token")
        assert "secret" not in repr(tenant)
