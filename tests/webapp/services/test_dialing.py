"""The engine's store: a tenant's settings as the engine host reads them, and the fencing of
its claims and writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.outcomes import Outcome
from engine.sip import ua
from engine.store import Finished, Refused, Window
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.models import Attempt, Lead, Tenant
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
        "pbx.example.com",
        5070,
        "trunk",
        "s3cret",
    )
    assert account.outbound_proxy == ("10.0.0.1", 5080)
    assert settings.operators == {tenant_a.operator_id: "101"}
    assert settings.retry_minutes == {
        "no_answer": 90,
        "busy": 5,
        "unavailable": 90,
        "technical_error": 10,
    }


# --- fencing ---------------------------------------------------------------------------------


def dialing_store(app, database_url, tenant_id: int) -> DialingStore:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        tenant.sip_host, tenant.dialing_enabled = "pbx.example.com", True
        db.session.commit()
    return DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY))


def claim(store: DialingStore, tenant_id: int, engine: str, epoch: int) -> list:
    settings = store.settings(tenant_id)
    return store.claim(settings, engine, epoch, 10, Window(True, None), lambda p: f"sip:{p}@pbx")


def test_a_stale_engines_claims_and_writes_are_refused_by_the_database(app, database_url, tenant_a):
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        old = store.start_engine(tenant_a.id)
        assert store.start_engine(tenant_a.id) == old + 1  # a new engine started since
        with pytest.raises(Refused) as refused:
            claim(store, tenant_a.id, "old-engine", old)
        assert refused.value.reason == "fenced"
        assert store.count_leads(tenant_a.id) == {"new": 1}  # nothing claimed

        claimed = claim(store, tenant_a.id, "new-engine", old + 1)
        assert [lead.lead_id for lead in claimed] == [tenant_a.lead_id]
        cdr = ua.CallRecord("sip:x@pbx", outcome=Outcome.BUSY, sip_code=486, end_at=time.time())
        done = [Finished(claimed[0].attempt_id, tenant_a.lead_id, None, cdr, "retry", None)]
        with pytest.raises(Refused):
            store.finish(tenant_a.id, old, done)
        assert store.count_leads(tenant_a.id) == {"dialing": 1}  # not written
        assert store.finish(tenant_a.id, old + 1, done) == 1
    finally:
        store.close()


def test_a_claim_after_dialing_was_switched_off_is_refused(app, database_url, tenant_a):
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        epoch = store.start_engine(tenant_a.id)
        settings = store.settings(tenant_a.id)  # read while dialing was on
        with app.app_context():
            db.session.get(Tenant, tenant_a.id).dialing_enabled = False
            db.session.commit()
        with pytest.raises(Refused) as refused:
            store.claim(settings, "engine", epoch, 10, Window(True, None), str)
        assert refused.value.reason == "dialing_off"
        assert store.count_leads(tenant_a.id) == {"new": 1}
    finally:
        store.close()


def test_recovery_keeps_a_customer_being_handed_over_from_being_called_again(
    app, database_url, tenant_a
):
    """The lost engine had taken an operator for one lead (handed): that customer may be
    talking to them. The other lead is retried, but not before the lost calls could be over."""
    from tests.engine.dialing import add_leads

    second = add_leads(app, tenant_a.id, ["+15550101999"])[0]
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        lost_epoch = store.start_engine(tenant_a.id)
        claimed = claim(store, tenant_a.id, "lost-engine", lost_epoch)
        assert {lead.lead_id for lead in claimed} == {tenant_a.lead_id, second}
        epoch = store.start_engine(tenant_a.id)
        settings = store.settings(tenant_a.id)
        before = datetime.now(UTC)
        lost = store.recover(
            tenant_a.id,
            "successor",
            epoch,
            settings,
            {tenant_a.lead_id: tenant_a.operator_id},
            bound=3600.0,
        )
    finally:
        store.close()
    assert {(item.lead_id, item.handed) for item in lost} == {
        (tenant_a.lead_id, True),
        (second, False),
    }
    with app.app_context():
        handed = db.session.get(Lead, tenant_a.lead_id)
        retried = db.session.get(Lead, second)
        assert (handed.status, handed.last_operator_id) == ("reached", tenant_a.operator_id)
        assert retried.status == "retry"
        next_at = retried.next_attempt_at.replace(tzinfo=UTC)
        assert next_at >= before + timedelta(seconds=3600)  # the bound, over 10 min of retry
        attempts = {
            a.lead_id: a
            for a in db.session.scalars(select(Attempt).where(Attempt.engine == "lost-engine"))
        }
        first = attempts[tenant_a.lead_id]
        assert (first.outcome, first.transfer_result, first.detail) == (
            "answered",
            "unconfirmed",
            "engine_lost",
        )
        assert (attempts[second].outcome, attempts[second].detail) == (
            "technical_error",
            "engine_lost",
        )


# --- campaigns -------------------------------------------------------------------------------


def test_a_claim_takes_so_many_of_each_campaign_and_none_of_a_paused_one(
    app, database_url, tenant_a
):
    from webapp.models import Campaign, CampaignState, Lead
    from webapp.services.campaigns import default_campaign

    store = dialing_store(app, database_url, tenant_a.id)
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        default = default_campaign(tenant).id
        other = Campaign(tenant_id=tenant.id, name="Other", key="other")
        paused = Campaign(tenant_id=tenant.id, name="Held", key="held", state="paused")
        db.session.add_all([other, paused])
        db.session.flush()
        for campaign, count in ((default, 3), (other.id, 3), (paused.id, 3)):
            db.session.add_all(
                Lead(tenant_id=tenant.id, campaign_id=campaign, phone=f"+1555{campaign:03d}{k:04d}")
                for k in range(count)
            )
        db.session.commit()
        other_id, paused_id = other.id, paused.id
    try:
        settings = store.settings(tenant_a.id)
        assert [c.campaign_id for c in settings.campaigns] == [default, other_id]  # running
        epoch = store.start_engine(tenant_a.id)
        window = Window(True, None)
        plan = {default: 1, other_id: 2, paused_id: 3}
        got = store.claim(settings, "engine", epoch, 6, window, str, plan)
        assert sorted(lead.campaign_id for lead in got) == sorted([default, other_id, other_id])
        rest = store.claim(settings, "engine", epoch, 10, window, str)  # any running campaign
        assert {lead.campaign_id for lead in rest} == {default, other_id}
        assert len(rest) == 4  # the fixture's lead, two of the default's, one of the other
    finally:
        store.close()
    with app.app_context():
        attempts = db.session.scalars(select(Attempt).where(Attempt.tenant_id == tenant_a.id))
        assert paused_id not in {a.campaign_id for a in attempts}
        assert db.session.get(Campaign, paused_id).state == CampaignState.PAUSED
