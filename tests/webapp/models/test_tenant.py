from datetime import time

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Campaign, SipAccount, Tenant


def test_a_new_tenant_has_the_product_defaults(app):
    """The company's own settings on the tenant; the dialing rules on its default campaign;
    no SIP account until the admin adds one."""
    with app.app_context():
        tenant = Tenant(name="Acme")
        db.session.add(tenant)
        db.session.commit()
        tenant = db.session.get(Tenant, tenant.id)
        assert (tenant.time_zone, tenant.default_phone_region) == ("UTC", "US")
        assert tenant.dialing_enabled is False
        campaign = db.session.scalars(select(Campaign).where(Campaign.tenant_id == tenant.id)).one()
        assert campaign.is_default and campaign.sip_account_id is None
        assert campaign.retry_minutes("no_answer") == 90
        assert campaign.retry_minutes("unavailable") == 90
        assert campaign.retry_minutes("busy") == 5
        assert campaign.retry_minutes("technical_error") == 10
        assert campaign.max_attempts == 5
        assert campaign.ring_timeout_seconds == 30
        assert campaign.pacing_mode == "multiplier"
        assert campaign.call_multiplier == 1.0
        assert campaign.abandon_rate_cap_percent == 3.0
        assert campaign.calling_hours_start == time(9, 0)
        assert campaign.calling_hours_end == time(21, 0)
        assert campaign.weekdays == [1, 2, 3, 4, 5, 6, 7]
        assert (campaign.start_date, campaign.end_date) == (None, None)
        assert campaign.hide_numbers is False
        assert campaign.result_choices == ["Sale", "Not interested", "Call back", "Wrong number"]
        assert (
            db.session.scalar(select(SipAccount).where(SipAccount.tenant_id == tenant.id)) is None
        )


def test_a_sip_account_has_the_product_defaults(app):
    with app.app_context():
        tenant = Tenant(name="Acme")
        db.session.add(tenant)
        db.session.flush()
        account = SipAccount(tenant_id=tenant.id, name="Main trunk")
        db.session.add(account)
        db.session.commit()
        account = db.session.get(SipAccount, account.id)
        assert (account.port, account.transport) == (5060, "udp")
        assert account.dial_format == "+{number}@{host}:{port}"
        assert account.refer_format == "{extension}@{host}:{port}"
        assert not account.has_password and not account.complete
        account.host, account.username = "pbx.example.com", "acme"
        assert account.complete


def test_repr_never_shows_the_sip_password(app):
    with app.app_context():
        account = SipAccount(name="Trunk", password_encrypted="gAAAA-secret-token")
        assert "secret" not in repr(account) and "gAAAA" not in repr(account)
