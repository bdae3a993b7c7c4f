"""The demo tenant of `./dev run`: created once, refreshed on every start."""

from __future__ import annotations

from sqlalchemy import func, select

from webapp import demo
from webapp.extensions import db
from webapp.models import Campaign, Lead, Operator, Tenant
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox


def test_the_demo_tenant_is_created_once_and_topped_up(app, database_url):
    box = SecretBox(app.extensions["autocall.config"].encryption_key)
    with app.app_context():
        logins = demo.seed(box, "127.0.0.1", 5090)
        tenant = db.session.scalar(select(Tenant).where(Tenant.name == demo.COMPANY))
        assert (tenant.sip_host, tenant.sip_port, tenant.dialing_enabled) == (
            "127.0.0.1",
            5090,
            True,
        )
        assert box.decrypt(tenant.sip_password_encrypted) == demo.PBX_PASSWORD
        leads = select(func.count()).select_from(Lead).where(Lead.tenant_id == tenant.id)
        assert db.session.scalar(leads) == demo.LEADS
        db.session.execute(db.update(Lead).values(status="reached"))  # the demo ran a while
        db.session.commit()
        again = demo.seed(box, "127.0.0.1", 5091)
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 1
        assert db.session.scalar(leads) == 2 * demo.LEADS  # topped up
        assert db.session.get(Tenant, tenant.id).sip_port == 5091
        assert db.session.scalar(select(func.count()).select_from(Operator)) == 3
        # Two campaigns, made once: the TV product's leads are in the second.
        campaigns = db.session.scalars(select(Campaign).order_by(Campaign.id)).all()
        assert [(c.key, c.is_default) for c in campaigns] == [
            ("default", True),
            ("tv-offer", False),
        ]
        tv = select(Lead).where(Lead.campaign_id == campaigns[1].id)
        tv_leads = db.session.scalars(tv).all()
        assert tv_leads and all(lead.card["product"] == demo.TV_PRODUCT for lead in tv_leads)
        operators = {o.extension: o.id for o in db.session.scalars(select(Operator))}
    # What the engine reads: the default campaign is everyone's, the TV offer Boris's (102,
    # directly) and Clara's (103, through her team).
    running = DialingStore(database_url, box).settings(tenant.id).campaigns
    assert [c.weights for c in running] == [None, {operators["102"]: 1, operators["103"]: 1}]
    assert logins == again and logins["admin"] == demo.ADMIN
    assert [email for _, email, _ in logins["operators"]] == [
        demo.operator_email(ext) for _, ext in demo.OPERATORS
    ]
