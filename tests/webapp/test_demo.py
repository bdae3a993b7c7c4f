"""The demo tenant of `./dev run`: created once, refreshed on every start."""

from __future__ import annotations

from sqlalchemy import func, select

from webapp import demo
from webapp.extensions import db
from webapp.models import Campaign, Lead, Operator, SipAccount, Tenant
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox


def test_the_demo_tenant_is_created_once_and_topped_up(app, database_url):
    box = SecretBox(app.extensions["autocall.config"].encryption_key)
    with app.app_context():
        logins = demo.seed(box, "127.0.0.1", 5090)
        tenant = db.session.scalar(select(Tenant).where(Tenant.name == demo.COMPANY))
        assert tenant.dialing_enabled
        (account,) = db.session.scalars(select(SipAccount)).all()
        assert (account.name, account.host, account.port, account.username) == (
            "Demo PBX",
            "127.0.0.1",
            5090,
            demo.PBX_USER,
        )
        assert box.decrypt(account.password_encrypted) == demo.PBX_PASSWORD
        leads = select(func.count()).select_from(Lead).where(Lead.tenant_id == tenant.id)
        assert db.session.scalar(leads) == demo.LEADS
        db.session.execute(db.update(Lead).values(status="reached"))  # the demo ran a while
        db.session.commit()
        again = demo.seed(box, "127.0.0.1", 5091)
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 1
        assert db.session.scalar(leads) == 2 * demo.LEADS  # topped up
        assert db.session.scalars(select(SipAccount.port)).all() == [5091]  # the same one
        assert db.session.scalar(select(func.count()).select_from(Operator)) == 3
        # Two campaigns, made once: the TV product's leads are in the second.
        campaigns = db.session.scalars(select(Campaign).order_by(Campaign.id)).all()
        assert [(c.key, c.is_default) for c in campaigns] == [
            ("default", True),
            ("tv-offer", False),
        ]
        for campaign in campaigns:  # both dial through the Demo PBX by the demo's rules
            assert campaign.sip_account_id == account.id
            assert {key: getattr(campaign, key) for key in demo.RULES} == demo.RULES
            assert campaign.wrap_up_timeout_seconds == 30
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
