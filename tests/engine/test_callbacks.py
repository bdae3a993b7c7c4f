"""Callbacks kept (docs/engine.md, "Callbacks"): a real engine host, real Redis, the real
database (SQLite and PostgreSQL) and SIPp as the PBX (tests/sipp/pbx.xml: a number ending
in 0 answers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.engine.dialing import (
    HostThread,
    add_leads,
    add_leads_through_the_api,
    attempts_of,
    dialing_tenant,
    engine_state,
    finish_as_they_come,
    go_on_line,
    leads_of,
    settled,
    wait_until,
)
from webapp import bus
from webapp.extensions import db
from webapp.models import Lead, Operator
from webapp.services import console


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _attempts_ended(app, tenant_id: int, count: int):
    def check() -> bool:
        attempts = attempts_of(app, tenant_id)
        return len(attempts) >= count and all(a.outcome is not None for a in attempts)

    return check


def _make_callback(app, tenant_id: int, phone: str, at: datetime, **values) -> int:
    """A lead promised a callback at `at` (its other columns from `values`)."""
    with app.app_context():
        lead = db.session.scalar(
            select(Lead).where(Lead.tenant_id == tenant_id, Lead.phone == phone)
        )
        lead.status = "retry"
        lead.next_attempt_at = lead.callback_at = at
        for name, value in values.items():
            setattr(lead, name, value)
        db.session.commit()
        return lead.id


def test_a_callback_on_a_lead_with_its_attempts_used_up_is_dialed_at_its_time(
    app, database_url, pbx
):
    """One attempt allowed: the customer answers and asks to be called back; the operator
    finishes with "call back at" in two seconds. The lead is dialed again then, and that
    call counts as its second attempt."""
    peer = pbx("pbx.xml", calls=20, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101",), max_attempts=1)
    phone = "+15550000310"
    add_leads(app, tenant_id, [phone])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), what="the first call")
        with app.app_context():
            lead = db.session.scalar(select(Lead).where(Lead.tenant_id == tenant_id))
            assert (lead.status, lead.attempts) == ("reached", 1)
            operator = db.session.get(Operator, operators["101"])
            call_back_at = datetime.now(UTC) + timedelta(seconds=2)
            console.finish(operator, lead, call_back_at, "Call back", "at six, please")
        wait_until(_attempts_ended(app, tenant_id, 2), what="the callback")
    first, second = attempts_of(app, tenant_id)
    assert (first.callback, first.result, first.comment) == (False, "Call back", "at six, please")
    assert second.callback and second.outcome == "answered"
    assert _utc(second.invite_at) >= call_back_at  # at its time, not before
    assert second.operator_id == operators["101"]
    lead = leads_of(app, tenant_id)[phone]
    assert (lead.status, lead.attempts, lead.callback_at) == ("reached", 2, None)
    peer.stop()
    assert (
        peer.result().logged("REFER-TO").count(f"sip:101@{peer.host}:{peer.port} FOR sip:{phone}")
        == 2
    )


def test_a_thousand_new_leads_imported_do_not_delay_a_due_callback(app, database_url, pbx):
    """A callback due now, then a CRM sends a thousand new leads: the engine's first claim
    (one tick) dials the callback, though new leads come first in this campaign."""
    peer = pbx("pbx.xml", calls=20, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101",), max_attempts=2)
    promised = "+15550000410"
    add_leads(app, tenant_id, [promised])
    callback = _make_callback(
        app, tenant_id, promised, datetime.now(UTC) - timedelta(seconds=1), attempts=2
    )
    add_leads_through_the_api(app, tenant_id, [f"+1555{n:07d}" for n in range(2000, 3000)])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(lambda: len(attempts_of(app, tenant_id)) >= 1, what="a first call")
    first = attempts_of(app, tenant_id)[0]
    assert (first.lead_id, first.callback) == (callback, True)
    assert len(leads_of(app, tenant_id)) == 1001


def test_a_personal_callback_waits_for_its_operator_then_goes_to_anyone(app, database_url, pbx):
    """Three callbacks kept by operator 101, who is off line, while 102 is free: the one due
    ten minutes ago waits for 101; the one past the grace period (30 minutes) goes to 102,
    as does the one kept by 103, deactivated since. When 101 comes on line, theirs is
    dialed and handed to them."""
    peer = pbx("pbx.xml", calls=20, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101", "102", "103"))
    mine, late, orphan = "+15550000510", "+15550000520", "+15550000530"
    add_leads(app, tenant_id, [mine, late, orphan])
    now = datetime.now(UTC)
    waiting = _make_callback(
        app, tenant_id, mine, now - timedelta(minutes=10), callback_operator_id=operators["101"]
    )
    _make_callback(
        app, tenant_id, late, now - timedelta(minutes=31), callback_operator_id=operators["101"]
    )
    _make_callback(
        app, tenant_id, orphan, now - timedelta(minutes=1), callback_operator_id=operators["103"]
    )
    with app.app_context():
        db.session.get(Operator, operators["103"]).active = False
        db.session.commit()
    go_on_line(app, tenant_id, operators["102"])
    with HostThread(database_url):
        finish_as_they_come(app, tenant_id, 2)
        with app.app_context():  # 102 finishes the last lead too: free, and nothing for them
            bus.presence(tenant_id).finish(operators["102"])
        wait_until(
            lambda: engine_state(app, tenant_id).get("reason") == "no_due_leads",
            what="the engine idle, with 101's callback waiting",
        )
        assert waiting not in {a.lead_id for a in attempts_of(app, tenant_id)}
        go_on_line(app, tenant_id, operators["101"])
        wait_until(_attempts_ended(app, tenant_id, 3), what="101's callback")
    by_lead = {a.lead_id: a for a in attempts_of(app, tenant_id)}
    leads = leads_of(app, tenant_id)
    assert by_lead[leads[late].id].operator_id == operators["102"]
    assert by_lead[leads[orphan].id].operator_id == operators["102"]
    assert by_lead[waiting].operator_id == operators["101"]
    assert all(attempt.callback for attempt in by_lead.values())
    assert all(lead.callback_at is None for lead in leads.values())
