"""Preview dialing end to end (engine/preview.py): a real engine host, real Redis, the real
database, SIPp as the PBX. The lead's card goes to a free operator first and no INVITE leaves
before they press Call; then the customer is dialed and handed to that operator, though
another is free; Skip puts the lead back with its reason and dials nobody; the campaign's
countdown dials by itself; an operator who goes off line while previewing gives the lead
back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from engine.presence import FREE, PREVIEWING, decode_all
from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    go_on_line,
    leads_of,
    set_tenant,
    settled,
    wait_until,
)
from webapp import bus
from webapp.extensions import db
from webapp.models import Operator
from webapp.services import console

ANSWERS = "+15550000010"


def invites(peer) -> int:
    """INVITEs SIPp has received so far."""
    return sum(1 for line in peer.result().messages.splitlines() if line.startswith("INVITE sip:"))


def states(app, tenant_id: int) -> dict:
    with app.app_context():
        return decode_all(bus.presence(tenant_id).states())


def previewing(app, tenant_id: int, operator_id: int, lead_id: int) -> bool:
    state = states(app, tenant_id).get(operator_id)
    return state is not None and (state.state, state.lead_id) == (PREVIEWING, lead_id)


def choose(app, operator_id: int, lead_id: int, choice: str, reason: str = "") -> bool:
    """What the console does when the operator presses Call or Skip."""
    with app.app_context():
        return console.choose(db.session.get(Operator, operator_id), lead_id, choice, reason)


def test_nothing_is_dialed_before_call_and_the_customer_goes_to_that_operator(
    app, database_url, pbx
):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, pacing_mode="preview")
    (lead_id,) = add_leads(app, tenant_id, [ANSWERS])
    first, second = operators["101"], operators["102"]
    go_on_line(app, tenant_id, first)
    with HostThread(database_url):
        wait_until(lambda: previewing(app, tenant_id, first, lead_id), what="the card shown")
        go_on_line(app, tenant_id, second)  # free, and still not the one the customer gets
        wait_until(lambda: states(app, tenant_id).get(second, None) is not None)
        time.sleep(1.0)  # ten ticks of the engine with the card open
        assert invites(peer) == 0
        assert leads_of(app, tenant_id)[ANSWERS].status == "dialing"
        assert previewing(app, tenant_id, first, lead_id)
        assert states(app, tenant_id)[second].state == FREE
        assert choose(app, second, lead_id, "call") is False  # not theirs to call
        assert choose(app, first, lead_id, "call") is True
        wait_until(settled(app, tenant_id, 1), what="the call")
        assert invites(peer) == 1

    (attempt,) = attempts_of(app, tenant_id)
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert attempt.operator_id == first
    assert attempt.refer_to == f"sip:101@{peer.host}:{peer.port}"
    lead = leads_of(app, tenant_id)[ANSWERS]
    assert (lead.status, lead.attempts, lead.skip_reason) == ("reached", 1, None)
    peer.stop()
    assert peer.result().logged("REFER-TO") == [f"{attempt.refer_to} FOR sip:{ANSWERS}"]


def test_skip_puts_the_lead_back_with_its_reason_and_dials_nobody(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="preview"
    )
    (lead_id,) = add_leads(app, tenant_id, [ANSWERS])
    operator = operators["101"]
    go_on_line(app, tenant_id, operator)
    with HostThread(database_url):
        wait_until(lambda: previewing(app, tenant_id, operator, lead_id), what="the card")
        assert choose(app, operator, lead_id, "skip", "wrong_data")
        wait_until(lambda: leads_of(app, tenant_id)[ANSWERS].status != "dialing", what="put back")
        wait_until(lambda: states(app, tenant_id)[operator].state == FREE, what="free again")
        time.sleep(0.5)  # the engine goes on: the lead is not due, so it is not shown again
        assert states(app, tenant_id)[operator].state == FREE
    lead = leads_of(app, tenant_id)[ANSWERS]
    assert (lead.status, lead.attempts, lead.skip_reason) == ("new", 0, "wrong_data")
    skipped_at = lead.skipped_at.replace(tzinfo=UTC)
    due_in = lead.next_attempt_at.replace(tzinfo=UTC) - skipped_at
    assert abs(due_in - timedelta(minutes=7)) < timedelta(seconds=2)  # the no-answer retry
    assert abs(datetime.now(UTC) - skipped_at) < timedelta(minutes=1)
    assert attempts_of(app, tenant_id) == []  # no call, no CDR
    assert invites(peer) == 0


def test_the_countdown_dials_by_itself_for_the_operator_who_sees_the_card(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, pacing_mode="preview", preview_countdown_seconds=1
    )
    (lead_id,) = add_leads(app, tenant_id, [ANSWERS])
    first = operators["101"]
    go_on_line(app, tenant_id, first)
    with HostThread(database_url):
        wait_until(lambda: previewing(app, tenant_id, first, lead_id), what="the card")
        go_on_line(app, tenant_id, operators["102"])
        wait_until(settled(app, tenant_id, 1), what="the call the countdown made")
    (attempt,) = attempts_of(app, tenant_id)
    assert (attempt.outcome, attempt.operator_id) == ("answered", first)
    assert invites(peer) == 1


def test_an_operator_who_goes_off_line_while_previewing_gives_the_lead_back(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="preview"
    )
    (lead_id,) = add_leads(app, tenant_id, [ANSWERS])
    operator = operators["101"]
    go_on_line(app, tenant_id, operator)
    with HostThread(database_url):
        wait_until(lambda: previewing(app, tenant_id, operator, lead_id), what="the card")
        with app.app_context():
            bus.presence(tenant_id).go_off_line(operator)
        wait_until(lambda: leads_of(app, tenant_id)[ANSWERS].status != "dialing", what="put back")
    lead = leads_of(app, tenant_id)[ANSWERS]
    assert (lead.status, lead.attempts, lead.skip_reason) == ("new", 0, None)
    assert lead.next_attempt_at is None  # due at once, for the next operator on line
    assert attempts_of(app, tenant_id) == []
    assert invites(peer) == 0


def test_dialing_switched_off_while_previewing_gives_the_lead_back_and_frees_the_operator(
    app, database_url, pbx
):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="preview"
    )
    (lead_id,) = add_leads(app, tenant_id, [ANSWERS])
    operator = operators["101"]
    go_on_line(app, tenant_id, operator)
    with HostThread(database_url):
        wait_until(lambda: previewing(app, tenant_id, operator, lead_id), what="the card")
        set_tenant(app, tenant_id, dialing_enabled=False)
        wait_until(lambda: leads_of(app, tenant_id)[ANSWERS].status != "dialing", what="put back")
        wait_until(lambda: states(app, tenant_id)[operator].state == FREE, what="free again")
    lead = leads_of(app, tenant_id)[ANSWERS]
    assert (lead.status, lead.attempts, lead.next_attempt_at) == ("new", 0, None)
    assert attempts_of(app, tenant_id) == [] and invites(peer) == 0
