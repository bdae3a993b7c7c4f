"""An answered customer who finds every operator busy, end to end (a real engine host, Redis,
the database, SIPp as the PBX playing tests/sipp/pbx.xml): the engine holds them up to the
campaign's abandon tolerance for the first operator to go free; after it the call is
abandoned, transferred to the campaign's fallback when it has one, else hung up.

Each test dials two customers who both answer, at a multiplier of 2 with one operator: the
first is transferred to the operator, the second finds them busy."""

from __future__ import annotations

import time

from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    go_on_line,
    leads_of,
    settled,
    wait_until,
)
from webapp import bus

FIRST, SECOND = "+15550000020", "+15550000030"


def two_customers_one_operator(app, pbx, **settings) -> tuple[object, int, int]:
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 300})
    tenant_id, operators = dialing_tenant(
        app,
        "Acme",
        peer,
        extensions=("101",),
        pacing_mode="multiplier",
        call_multiplier=2.0,
        **settings,
    )
    add_leads(app, tenant_id, [FIRST, SECOND])
    go_on_line(app, tenant_id, *operators.values())
    return peer, tenant_id, operators["101"]


def busy(app, tenant_id: int, operator_id: int) -> bool:
    from engine.presence import BUSY, decode_all

    with app.app_context():
        state = decode_all(bus.presence(tenant_id).states()).get(operator_id)
    return state is not None and state.state == BUSY


def test_a_customer_held_until_an_operator_is_free_is_transferred_not_abandoned(
    app, database_url, pbx
):
    peer, tenant_id, operator_id = two_customers_one_operator(
        app, pbx, abandon_tolerance_seconds=5.0
    )
    with HostThread(database_url):
        wait_until(lambda: busy(app, tenant_id, operator_id), what="the first transfer")
        time.sleep(1.0)  # the second customer waits on line
        with app.app_context():
            bus.presence(tenant_id).finish(operator_id)  # the console: the lead is finished
        wait_until(settled(app, tenant_id, 2), what="two attempts")

    attempts = attempts_of(app, tenant_id)
    assert [(a.outcome, a.detail, a.operator_id) for a in attempts] == [
        ("answered", None, operator_id),
        ("answered", None, operator_id),
    ]
    held = max(attempts, key=lambda a: a.refer_at)
    # Held while the operator was busy (a second at least), then handed to them.
    assert (held.refer_at - held.answer_at).total_seconds() >= 0.9
    assert {lead.status for lead in leads_of(app, tenant_id).values()} == {"reached"}
    peer.stop()
    assert len(peer.result().logged("REFER-TO")) == 2


def test_an_abandoned_customer_is_transferred_to_the_fallback(app, database_url, pbx):
    peer, tenant_id, _operator = two_customers_one_operator(
        app, pbx, abandon_tolerance_seconds=1.0, fallback_target="700"
    )
    with HostThread(database_url):  # nobody finishes: the operator stays busy
        wait_until(settled(app, tenant_id, 2), what="two attempts")

    attempts = attempts_of(app, tenant_id)
    assert sorted((a.outcome, a.detail) for a in attempts) == [
        ("answered", None),
        ("technical_error", "sent_to_fallback"),
    ]
    sent = next(a for a in attempts if a.detail == "sent_to_fallback")
    assert sent.refer_to == f"sip:700@{peer.host}:{peer.port}"
    assert sent.operator_id is None and sent.transfer_result == "succeeded"
    assert (sent.refer_at - sent.answer_at).total_seconds() >= 1.0  # after the tolerance
    lead = next(lead for lead in leads_of(app, tenant_id).values() if lead.id == sent.lead_id)
    assert (lead.status, lead.last_outcome) == ("retry", "technical_error")
    peer.stop()
    refers = peer.result().logged("REFER-TO")
    assert f"sip:700@{peer.host}:{peer.port} FOR sip:{lead.phone}" in refers
    assert len(refers) == 2  # the operator's, the fallback's


def test_without_a_fallback_an_abandoned_customer_is_hung_up_after_the_tolerance(
    app, database_url, pbx
):
    peer, tenant_id, _operator = two_customers_one_operator(app, pbx, abandon_tolerance_seconds=1.0)
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 2), what="two attempts")

    attempts = attempts_of(app, tenant_id)
    assert sorted((a.outcome, a.detail) for a in attempts) == [
        ("answered", None),
        ("technical_error", "no_free_operator"),
    ]
    dropped = next(a for a in attempts if a.detail == "no_free_operator")
    assert dropped.refer_at is None and dropped.operator_id is None
    assert (dropped.end_at - dropped.answer_at).total_seconds() >= 1.0  # held, then BYE
    peer.stop()
    assert len(peer.result().logged("REFER-TO")) == 1
