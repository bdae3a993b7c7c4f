"""Campaigns at the engine: only running campaigns dial, a paused campaign's new calls stop
within a second while the others go on, and the engine says why when only paused
campaigns have due leads. Checked where it matters: at the PBX (the demo PBX's journal)."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from tests.engine.dialing import (
    HostThread,
    PbxThread,
    add_leads,
    attempts_of,
    calls_at_pbx,
    demo_pbx_tenant,
    engine_state,
    finish_as_they_come,
    go_on_line,
    leads_of,
    wait_until,
)
from webapp.extensions import db
from webapp.models import Campaign, CampaignState, Lead, SipAccount, Tenant
from webapp.services.campaigns import create_campaign, set_state

#: Numbers the demo PBX lets ring without an answer (last digit 3): each call lasts the ring
#: timeout, so the campaigns' calls are spread over seconds.
TV = [f"+1555100{n:03d}3" for n in range(12)]
DEFAULT = [f"+1555200{n:03d}3" for n in range(12)]


def _second_campaign(
    app, tenant_id: int, phones: list[str], name: str = "TV offer", key: str = "tv-offer"
) -> int:
    """A running campaign (by default "TV offer") holding these leads, dialed before the
    default's, with the default campaign's rules."""
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        campaign = create_campaign(tenant, name, key, None)
        db.session.execute(
            update(Lead)
            .where(Lead.tenant_id == tenant_id, Lead.phone.in_(phones))
            .values(campaign_id=campaign.id, priority=10)
        )
        db.session.commit()
        return campaign.id


def _set_state(app, campaign_id: int, state: CampaignState) -> None:
    with app.app_context():
        set_state(db.session.get(Campaign, campaign_id), state, None)


def test_a_paused_campaign_stops_its_new_calls_within_a_second_and_the_other_goes_on(
    app, database_url
):
    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(
            app,
            "Acme",
            pbx,
            ring_timeout_seconds=1,
            pacing_mode="multiplier",
            call_multiplier=2.0,
        )
        add_leads(app, tenant_id, TV + DEFAULT)
        tv = _second_campaign(app, tenant_id, TV)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(
                lambda: any(call.number in TV for call in calls_at_pbx(pbx.journal)),
                what="a call of the TV campaign",
            )
            _set_state(app, tv, CampaignState.PAUSED)
            paused = time.time()
            wait_until(
                lambda: {c.number for c in calls_at_pbx(pbx.journal)} >= set(DEFAULT),
                what="every lead of the default campaign dialed",
            )
            wait_until(
                lambda: engine_state(app, tenant_id).get("reason") == "campaigns_paused",
                what=lambda: f"the reason: {engine_state(app, tenant_id)}",
            )
        calls = calls_at_pbx(pbx.journal)
    tv_calls = [call for call in calls if call.number in TV]
    assert tv_calls and all(call.start < paused + 1.0 for call in tv_calls), tv_calls
    leads = leads_of(app, tenant_id)
    left = [phone for phone in TV if leads[phone].status == "new"]
    assert left, "the pause came after every TV lead was dialed: the test proves nothing"
    assert len(tv_calls) + len(left) == len(TV)
    # Every attempt names its lead's campaign.
    by_lead = {lead.id: lead.campaign_id for lead in leads.values()}
    assert all(a.campaign_id == by_lead[a.lead_id] for a in attempts_of(app, tenant_id))
    assert {a.campaign_id for a in attempts_of(app, tenant_id)} == {
        tv,
        by_lead[leads[DEFAULT[0]].id],
    }


def test_a_campaign_run_again_dials_its_leads(app, database_url):
    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(app, "Acme", pbx, ring_timeout_seconds=1)
        add_leads(app, tenant_id, TV[:3])
        tv = _second_campaign(app, tenant_id, TV[:3])
        _set_state(app, tv, CampaignState.PAUSED)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(
                lambda: engine_state(app, tenant_id).get("reason") == "campaigns_paused",
                what=lambda: f"the reason: {engine_state(app, tenant_id)}",
            )
            assert calls_at_pbx(pbx.journal) == []
            _set_state(app, tv, CampaignState.RUNNING)
            wait_until(
                lambda: {c.number for c in calls_at_pbx(pbx.journal)} == set(TV[:3]),
                what="the campaign's three leads dialed",
            )


def test_each_customer_goes_to_an_operator_of_their_campaign_and_none_is_dropped(app, database_url):
    """Operator 101 works only the default campaign; 102 works both, through a team. The
    customers of "TV offer" all go to 102, 101 takes the default's, and no customer finds
    nobody free: the engine starts a campaign's calls for its own free operators and takes
    the operator who works fewer campaigns first. (An operator never gets two customers at
    once: the take is atomic in Redis, tests/engine/test_presence.py.)"""
    from webapp.models import CampaignMember, Operator, Team

    answering_tv = [f"+1555300{n:03d}0" for n in range(6)]  # last digit 0: answers
    answering_default = [f"+1555400{n:03d}0" for n in range(6)]
    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(app, "Acme", pbx)
        add_leads(app, tenant_id, answering_tv + answering_default)
        tv = _second_campaign(app, tenant_id, answering_tv)
        with app.app_context():
            team = Team(tenant_id=tenant_id, name="Both")
            db.session.add(team)
            db.session.flush()
            db.session.get(Operator, operators["102"]).team_id = team.id
            default = db.session.scalar(
                select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.is_default)
            )
            db.session.add_all(
                [
                    CampaignMember(
                        tenant_id=tenant_id, campaign_id=default, operator_id=operators["101"]
                    ),
                    CampaignMember(tenant_id=tenant_id, campaign_id=default, team_id=team.id),
                    CampaignMember(tenant_id=tenant_id, campaign_id=tv, team_id=team.id, weight=2),
                ]
            )
            db.session.commit()
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            finish_as_they_come(app, tenant_id, 12, timeout=60)
    attempts = attempts_of(app, tenant_id)
    transferred = [a for a in attempts if a.transfer_result == "succeeded"]
    by_campaign = {
        c: {a.operator_id for a in transferred if a.campaign_id == c} for c in (tv, default)
    }
    assert by_campaign[tv] == {operators["102"]}, by_campaign
    assert operators["101"] in by_campaign[default]
    assert by_campaign[default] <= {operators["101"], operators["102"]}
    missed = [(a.campaign_id, a.detail) for a in attempts if a not in transferred]
    assert len({a.lead_id for a in transferred}) == 12, missed  # nobody found no operator


def test_two_campaigns_dial_through_their_own_sip_accounts_at_two_pbxes(app, database_url):
    """The TV campaign dials through a second SIP account, at a second PBX: each PBX gets
    exactly its campaign's customers, from a user agent (a socket) of its own."""
    with PbxThread() as first, PbxThread(username="tv-trunk", password="other") as second:
        tenant_id, operators = demo_pbx_tenant(
            app,
            "Acme",
            first,
            ring_timeout_seconds=1,
            pacing_mode="multiplier",
            call_multiplier=2.0,
        )
        add_leads(app, tenant_id, TV + DEFAULT)
        tv = _second_campaign(app, tenant_id, TV)
        with app.app_context():
            account = SipAccount(
                tenant_id=tenant_id,
                name="TV trunk",
                host=second.host,
                port=second.port,
                username=second.username,
                password_encrypted=app.extensions["autocall.secrets"].encrypt(second.password),
            )
            db.session.add(account)
            db.session.flush()
            db.session.get(Campaign, tv).sip_account_id = account.id
            db.session.commit()
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(
                lambda: (
                    {c.number for c in calls_at_pbx(first.journal)} >= set(DEFAULT)
                    and {c.number for c in calls_at_pbx(second.journal)} >= set(TV)
                ),
                timeout=30,
                what="every lead dialed at its campaign's PBX",
            )
        at_first, at_second = calls_at_pbx(first.journal), calls_at_pbx(second.journal)
    assert {c.number for c in at_first} == set(DEFAULT)
    assert {c.number for c in at_second} == set(TV)
    sources = {c.source for c in at_first}, {c.source for c in at_second}
    assert len(sources[0]) == len(sources[1]) == 1 and sources[0] != sources[1]


def test_a_campaign_past_its_end_date_or_outside_its_days_does_not_dial_and_says_why(
    app, database_url
):
    """Three campaigns: the default dials; "TV offer" ended yesterday; "Weekend" calls only
    on a day that is not today. The PBX sees only the default's customers, and the engine
    says why each of the others does not dial."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC)
    not_today = str(today.isoweekday() % 7 + 1)  # tomorrow's weekday
    weekend = [f"+1555300{n:03d}3" for n in range(4)]
    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(app, "Acme", pbx, ring_timeout_seconds=1)
        add_leads(app, tenant_id, TV + DEFAULT + weekend)
        tv = _second_campaign(app, tenant_id, TV)
        days = _second_campaign(app, tenant_id, weekend, name="Weekend", key="weekend")
        with app.app_context():
            db.session.get(Campaign, tv).end_date = (today - timedelta(days=1)).date()
            db.session.get(Campaign, days).calling_weekdays = not_today
            db.session.commit()
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(
                lambda: {c.number for c in calls_at_pbx(pbx.journal)} >= set(DEFAULT),
                what="every lead of the default campaign dialed",
            )
            wanted = {str(tv): ["past_end_date", ""], str(days): ["outside_calling_hours", ""]}
            wait_until(
                lambda: wanted.items() <= engine_state(app, tenant_id).get("campaigns", {}).items(),
                what=lambda: f"the reasons {wanted}, not {engine_state(app, tenant_id)}",
            )
        dialed = {c.number for c in calls_at_pbx(pbx.journal)}
    assert dialed == set(DEFAULT)  # none of TV's, none of Weekend's
