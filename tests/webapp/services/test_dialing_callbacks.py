"""The claim and callbacks (docs/engine.md, "Callbacks"): a due callback comes first and is
claimed whatever its attempts; the campaign's lead order decides between new leads and due
retries; a personal callback waits for its operator until the grace period is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.store import Window
from tests.conftest import PASSWORD
from tests.engine.dialing import add_leads
from tests.webapp.services.test_dialing import dialing_store, uri
from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, Tenant
from webapp.services.accounts import create_operator


def _set_lead(app, lead_id: int, **values) -> None:
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        for name, value in values.items():
            setattr(lead, name, value)
        db.session.commit()


def _set_campaign(app, tenant_id: int, **values) -> None:
    with app.app_context():
        campaign = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == tenant_id, Campaign.is_default)
        )
        for name, value in values.items():
            setattr(campaign, name, value)
        db.session.commit()


def _one_by_one(store, tenant_id: int, count: int, free=()) -> list:
    """Claim one lead at a time, as many times: the order the engine dials them in."""
    epoch = store.start_engine(tenant_id)
    order = []
    for _ in range(count):
        settings = store.settings(tenant_id)
        (campaign,) = settings.campaigns
        claimed = store.claim(
            settings,
            "engine",
            epoch,
            {campaign.campaign_id: 1},
            {campaign.campaign_id: Window(True, None)},
            uri,
            free,
        )
        order.extend(claimed)
    return order


def _leads(app, tenant_a) -> dict[str, int]:
    """The tenant's lead (new, priority 0) and: a new lead of priority 5, a due retry, a due
    retry of priority 9, and a callback due on a lead that has used its 2 attempts."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    new_high, retry, retry_high, callback = add_leads(
        app, tenant_a.id, ["+15550101001", "+15550101002", "+15550101003", "+15550101004"]
    )
    _set_lead(app, new_high, priority=5)
    _set_lead(app, retry, status="retry", attempts=1, next_attempt_at=past)
    _set_lead(app, retry_high, status="retry", attempts=1, next_attempt_at=past, priority=9)
    _set_lead(
        app,
        callback,
        status="retry",
        attempts=2,
        next_attempt_at=past,
        callback_at=past,
        priority=-5,
    )
    _set_campaign(app, tenant_a.id, max_attempts=2)
    return {
        "new": tenant_a.lead_id,
        "new_high": new_high,
        "retry": retry,
        "retry_high": retry_high,
        "callback": callback,
    }


@pytest.mark.parametrize(
    ("lead_order", "expected"),
    [
        ("new_first", ["callback", "new_high", "new", "retry_high", "retry"]),
        ("retries_first", ["callback", "retry_high", "retry", "new_high", "new"]),
        ("priority", ["callback", "retry_high", "new_high", "retry", "new"]),
    ],
)
def test_a_due_callback_comes_first_then_the_campaigns_lead_order(
    app, database_url, tenant_a, lead_order, expected
):
    leads = _leads(app, tenant_a)
    names = {lead_id: name for name, lead_id in leads.items()}
    _set_campaign(app, tenant_a.id, lead_order=lead_order)
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        claimed = _one_by_one(store, tenant_a.id, 6)
    finally:
        store.close()
    assert [names[lead.lead_id] for lead in claimed] == expected
    callback = claimed[0]
    assert (callback.callback, callback.attempts) == (True, 3)  # over the maximum: counted
    with app.app_context():
        attempts = {a.lead_id: a.callback for a in db.session.scalars(select(Attempt))}
    assert attempts == {lead_id: name == "callback" for name, lead_id in leads.items()}


def test_a_callback_not_yet_due_waits_and_its_lead_is_not_dialed_as_a_retry(
    app, database_url, tenant_a
):
    (lead,) = add_leads(app, tenant_a.id, ["+15550101005"])
    _set_lead(
        app,
        lead,
        status="retry",
        attempts=1,
        next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
        callback_at=datetime.now(UTC) + timedelta(hours=1),
    )
    _set_lead(app, tenant_a.lead_id, status="exhausted", attempts=5)
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        assert _one_by_one(store, tenant_a.id, 1) == []
    finally:
        store.close()


def test_a_personal_callback_waits_for_its_operator_until_the_grace_period_ends(
    app, database_url, tenant_a
):
    """Due 10 minutes ago with a 30-minute grace period: claimed only with its operator
    free, and offered to them; due 31 minutes ago, or for an operator deactivated since:
    claimed with nobody of theirs free."""
    operator = tenant_a.operator_id
    now = datetime.now(UTC)
    _set_lead(app, tenant_a.lead_id, status="exhausted")
    waiting, late, orphan = add_leads(
        app, tenant_a.id, ["+15550101006", "+15550101007", "+15550101008"]
    )
    with app.app_context():
        gone = create_operator(
            db.session.get(Tenant, tenant_a.id),
            name="Gone",
            email="gone@alpha.example",
            extension="199",
            password=PASSWORD,
            team_id=None,
        )
        gone.active = False  # deactivated by the admin since the callback was set
        db.session.commit()
        gone_id = gone.id
    for lead_id, due, whose in (
        (waiting, now - timedelta(minutes=10), operator),
        (late, now - timedelta(minutes=31), operator),
        (orphan, now - timedelta(minutes=1), gone_id),
    ):
        _set_lead(
            app,
            lead_id,
            status="retry",
            attempts=1,
            next_attempt_at=due,
            callback_at=due,
            callback_operator_id=whose,
            last_operator_id=None,
        )
    store = dialing_store(app, database_url, tenant_a.id)
    try:
        without = _one_by_one(store, tenant_a.id, 3, free=[])
        assert [lead.lead_id for lead in without] == [late, orphan]  # the earliest first
        assert [lead.last_operator_id for lead in without] == [operator, gone_id]
        mine = _one_by_one(store, tenant_a.id, 1, free=[operator])
    finally:
        store.close()
    assert [(lead.lead_id, lead.last_operator_id) for lead in mine] == [(waiting, operator)]
