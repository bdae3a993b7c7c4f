"""The engine's store: a tenant's settings as the engine host reads them, and the fencing of
its claims and writes."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import pytest
from sqlalchemy import select, update

from engine.outcomes import Detail, Outcome, TransferResult
from engine.sip import ua
from engine.store import EVERY_DAY, CampaignSettings, Finished, Refused, Window
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.models import Attempt, Campaign, CampaignState, Lead, SipAccount, Tenant
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox


def _account(tenant_id: int, name: str, **values) -> int:
    account = SipAccount(tenant_id=tenant_id, name=name, **values)
    db.session.add(account)
    db.session.flush()
    return account.id


def test_the_engine_reads_each_campaigns_rules_and_sip_account(app, database_url, tenant_a):
    """Two campaigns through two SIP accounts, each with its own rules; a paused campaign
    and an account no running campaign uses are not read; a campaign without an account
    is read, to say why it does not dial."""
    box = SecretBox(DEV_ENCRYPTION_KEY)
    with app.app_context():
        trunk = _account(
            tenant_a.id,
            "Trunk",
            host="pbx.example.com",
            port=5070,
            username="trunk",
            outbound_proxy="10.0.0.1:5080",
            password_encrypted=box.encrypt("s3cret"),
        )
        second = _account(
            tenant_a.id,
            "Second",
            host="pbx2.example.com",
            username="two",
            dial_format="9{number}",
            transport="tls",
            tls_ca_pem="-----BEGIN CERTIFICATE-----\n...",
            use_sips=True,
        )
        unused = _account(tenant_a.id, "Unused", host="pbx3.example.com", username="three")
        default = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == tenant_a.id, Campaign.is_default)
        )
        default.sip_account_id = trunk
        tv = Campaign(
            tenant_id=tenant_a.id,
            name="TV",
            key="tv",
            sip_account_id=second,
            retry_busy_minutes=2,
            max_attempts=9,
            ring_timeout_seconds=25,
            calling_hours_start=clock(10),
            calling_hours_end=clock(18),
            calling_weekdays="12345",
            start_date=date(2026, 12, 1),
            pacing_mode="predictive",
            call_multiplier=1.5,
            wrap_up_timeout_seconds=45,
            failed_transfers_limit=0,
        )
        bare = Campaign(tenant_id=tenant_a.id, name="Bare", key="bare")
        held = Campaign(
            tenant_id=tenant_a.id, name="Held", key="held", state="paused", sip_account_id=unused
        )
        db.session.add_all([tv, bare, held])
        db.session.commit()
        ids = (default.id, tv.id, bare.id)
    store = DialingStore(database_url, box)
    try:
        settings = store.settings(tenant_a.id)
    finally:
        store.close()
    assert [c.campaign_id for c in settings.campaigns] == list(ids)
    assert set(settings.accounts) == {trunk, second}
    account = settings.accounts[trunk].account
    assert (account.host, account.port, account.username, account.password) == (
        "pbx.example.com",
        5070,
        "trunk",
        "s3cret",
    )
    assert account.outbound_proxy == ("10.0.0.1", 5080)
    assert settings.accounts[second].dial_format == "9{number}"
    tls = settings.accounts[second].account
    assert (tls.transport, tls.tls_ca_pem, tls.use_sips) == (
        "tls",
        "-----BEGIN CERTIFICATE-----\n...",
        True,
    )
    assert (account.transport, account.tls_ca_pem, account.use_sips) == ("udp", "", False)
    assert settings.operators == {tenant_a.operator_id: "101"}
    first, tv_settings, bare_settings = settings.campaigns
    assert first.account_id == trunk and first.retry_minutes == {
        "no_answer": 90,
        "busy": 5,
        "unavailable": 90,
        "technical_error": 10,
    }
    assert (first.max_attempts, first.ring_timeout, first.weekdays) == (5, 30.0, EVERY_DAY)
    assert tv_settings == CampaignSettings(
        campaign_id=ids[1],
        account_id=second,
        ring_timeout=25.0,
        retry_minutes={"no_answer": 90, "busy": 2, "unavailable": 90, "technical_error": 10},
        max_attempts=9,
        calling_hours=(clock(10), clock(18)),
        weekdays=frozenset({1, 2, 3, 4, 5}),
        start_date=date(2026, 12, 1),
        pacing_mode="predictive",
        multiplier=1.5,
        wrap_up_timeout=45.0,
        failed_transfers_limit=0,
    )
    assert bare_settings.account_id is None


# --- fencing ---------------------------------------------------------------------------------


def dialing_store(app, database_url, tenant_id: int) -> DialingStore:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        tenant.dialing_enabled = True
        account = _account(tenant_id, "Trunk", host="pbx.example.com", username="trunk")
        for campaign in db.session.scalars(select(Campaign).where(Campaign.tenant_id == tenant_id)):
            campaign.sip_account_id = account
        db.session.commit()
    return DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY))


def everywhere(settings, count: int = 10) -> tuple[dict[int, int], dict[int, Window]]:
    """So many leads of each running campaign, in every calling zone."""
    campaigns = [c.campaign_id for c in settings.campaigns]
    return dict.fromkeys(campaigns, count), dict.fromkeys(campaigns, Window(True, None))


def uri(campaign_id: int, phone: str) -> str:
    return f"sip:{phone}@pbx"


def claim(store: DialingStore, tenant_id: int, engine: str, epoch: int) -> list:
    settings = store.settings(tenant_id)
    return store.claim(settings, engine, epoch, *everywhere(settings), uri)


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
            store.claim(settings, "engine", epoch, *everywhere(settings), uri)
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
        plan = {default: 1, other_id: 2, paused_id: 3}
        windows = dict.fromkeys(plan, Window(True, None))
        got = store.claim(settings, "engine", epoch, plan, windows, uri)
        assert sorted(lead.campaign_id for lead in got) == sorted([default, other_id, other_id])
        rest = store.claim(settings, "engine", epoch, *everywhere(settings), uri)
        assert {lead.campaign_id for lead in rest} == {default, other_id}
        assert len(rest) == 4  # the fixture's lead, two of the default's, one of the other
        # Paused since the settings were read: not claimed.
        with app.app_context():
            db.session.get(Campaign, other_id).state = CampaignState.PAUSED.value
            db.session.commit()
        more = [f"+1555777{k:04d}" for k in range(2)]
        from tests.engine.dialing import add_leads

        add_leads(app, tenant_a.id, more)  # into the default campaign
        with app.app_context():
            db.session.execute(
                update(Lead).where(Lead.phone.in_(more)).values(campaign_id=other_id)
            )
            db.session.commit()
        assert store.claim(settings, "engine", epoch, *everywhere(settings), uri) == []
    finally:
        store.close()
    with app.app_context():
        attempts = db.session.scalars(select(Attempt).where(Attempt.tenant_id == tenant_a.id))
        assert paused_id not in {a.campaign_id for a in attempts}
        assert db.session.get(Campaign, paused_id).state == CampaignState.PAUSED


def test_each_campaign_is_claimed_by_its_own_attempts_limit_and_window(app, database_url, tenant_a):
    """A lead with 3 attempts is due in a campaign allowing 5, not in one allowing 3; a
    campaign's window keeps its leads of closed zones; the store says why each found none."""
    store = dialing_store(app, database_url, tenant_a.id)
    with app.app_context():
        default = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == tenant_a.id, Campaign.is_default)
        )
        strict = Campaign(
            tenant_id=tenant_a.id,
            name="Strict",
            key="strict",
            max_attempts=3,
            sip_account_id=default.sip_account_id,
        )
        db.session.add(strict)
        db.session.flush()
        db.session.execute(
            update(Lead).where(Lead.tenant_id == tenant_a.id).values(attempts=3, status="retry")
        )
        db.session.add(
            Lead(
                tenant_id=tenant_a.id,
                campaign_id=strict.id,
                phone="+15550109000",
                attempts=3,
                status="retry",
            )
        )
        tokyo = Lead(
            tenant_id=tenant_a.id,
            campaign_id=default.id,
            phone="+81300000000",
            time_zone="Asia/Tokyo",
        )
        db.session.add(tokyo)
        db.session.commit()
        default_id, strict_id = default.id, strict.id
    try:
        settings = store.settings(tenant_a.id)
        epoch = store.start_engine(tenant_a.id)
        closed_in_tokyo = Window(True, ("Europe/Moscow",))
        windows = {default_id: closed_in_tokyo, strict_id: Window(True, None)}
        wanted = {default_id: 10, strict_id: 10}
        got = store.claim(settings, "engine", epoch, wanted, windows, uri)
        assert [(lead.lead_id, lead.campaign_id) for lead in got] == [
            (tenant_a.lead_id, default_id)  # 3 attempts of 5; the strict one's lead is spent
        ]
        assert store.idle_reasons(settings, [default_id, strict_id]) == {
            default_id: "outside_calling_hours",  # Tokyo's lead is due, outside the window
            strict_id: "no_due_leads",
        }
    finally:
        store.close()


def test_recovery_retries_each_lead_by_its_campaigns_retry_time(app, database_url, tenant_a):
    store = dialing_store(app, database_url, tenant_a.id)
    with app.app_context():
        slow = Campaign(
            tenant_id=tenant_a.id,
            name="Slow",
            key="slow",
            retry_technical_error_minutes=240,
            sip_account_id=db.session.scalar(
                select(SipAccount.id).where(SipAccount.tenant_id == tenant_a.id)
            ),
        )
        db.session.add(slow)
        db.session.flush()
        db.session.add(Lead(tenant_id=tenant_a.id, campaign_id=slow.id, phone="+15550108000"))
        db.session.commit()
        slow_id = slow.id
    try:
        lost = store.start_engine(tenant_a.id)
        assert len(claim(store, tenant_a.id, "lost-engine", lost)) == 2
        epoch = store.start_engine(tenant_a.id)
        before = datetime.now(UTC)
        store.recover(tenant_a.id, "successor", epoch, store.settings(tenant_a.id), {}, 1.0)
    finally:
        store.close()
    with app.app_context():
        due = {
            lead.campaign_id: lead.next_attempt_at.replace(tzinfo=UTC) - before
            for lead in db.session.scalars(select(Lead).where(Lead.tenant_id == tenant_a.id))
        }
    assert timedelta(minutes=240) <= due[slow_id] < timedelta(minutes=241)
    (default_due,) = [d for c, d in due.items() if c != slow_id]
    assert timedelta(minutes=10) <= default_due < timedelta(minutes=11)


def test_a_late_transfer_result_corrects_the_attempt_and_is_fenced(app, database_url, tenant_a):
    """An attempt written as timed out (its lead to be retried) is corrected by the late
    result: answered, the lead reached with no next attempt. A stale engine's correction is
    refused with nothing written; an attempt that did not time out is not corrected."""
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        old = store.start_engine(tenant_a.id)
        (lead,) = claim(store, tenant_a.id, "engine", old)
        cdr = ua.CallRecord(
            "sip:x@pbx",
            outcome=Outcome.TECHNICAL_ERROR,
            detail=Detail.TRANSFER_TIMEOUT,
            transfer_result=TransferResult.FAILED,
            sip_code=200,
            end_at=time.time(),
        )
        retry_at = datetime.now(UTC) + timedelta(minutes=10)
        done = [Finished(lead.attempt_id, lead.lead_id, None, cdr, "retry", retry_at)]
        assert store.finish(tenant_a.id, old, done) == 1
        at = datetime.now(UTC)
        succeeded = (lead.attempt_id, TransferResult.SUCCEEDED, 200, at, "OK")

        new = store.start_engine(tenant_a.id)  # the tenant moved on to another engine
        with pytest.raises(Refused) as refused:
            store.correct_transfer(tenant_a.id, old, *succeeded)
        assert refused.value.reason == "fenced"
        assert store.count_leads(tenant_a.id) == {"retry": 1}  # not written

        assert store.correct_transfer(tenant_a.id, new, *succeeded)
        with app.app_context():
            attempt = db.session.get(Attempt, lead.attempt_id)
            assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
                "answered",
                None,
                "succeeded",
            )
            assert (attempt.transfer_sip_code, attempt.transfer_sip_reason) == (200, "OK")
            row = db.session.get(Lead, lead.lead_id)
            assert (row.status, row.next_attempt_at, row.last_outcome) == (
                "reached",
                None,
                "answered",
            )
        # Corrected once: no longer an attempt that timed out.
        assert not store.correct_transfer(tenant_a.id, new, *succeeded)
    finally:
        store.close()


def test_a_late_result_leaves_a_lead_that_moved_on(app, database_url, tenant_a):
    """The lead was dialed again since the timed-out attempt: the old attempt is corrected,
    the lead (in its newer attempt) is left as it is."""
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        epoch = store.start_engine(tenant_a.id)
        (first,) = claim(store, tenant_a.id, "engine", epoch)
        cdr = ua.CallRecord(
            "sip:x@pbx",
            outcome=Outcome.TECHNICAL_ERROR,
            detail=Detail.TRANSFER_TIMEOUT,
            end_at=time.time(),
        )
        store.finish(
            tenant_a.id,
            epoch,
            [Finished(first.attempt_id, first.lead_id, None, cdr, "retry", None)],
        )
        (second,) = claim(store, tenant_a.id, "engine", epoch)
        assert second.lead_id == first.lead_id
        at = datetime.now(UTC)
        assert store.correct_transfer(
            tenant_a.id, epoch, first.attempt_id, TransferResult.SUCCEEDED, 200, at
        )
        assert store.count_leads(tenant_a.id) == {"dialing": 1}
    finally:
        store.close()
