"""A transfer whose result comes late: the PBX passes our REFER on to the customer's phone and
sends the final NOTIFY only when the operator answers, 12 s later (SIPp plays the PBX). With
the account's wait at 30 s the attempt is answered at once; with 10 s it is first written as
timed out and then corrected by the late NOTIFY (docs/engine.md, "The transfer's result")."""

from __future__ import annotations

import json

from engine.presence import decode_all
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

CUSTOMER = "+15550000010"


def _console(app, tenant_id: int, operator_id: int) -> list[str]:
    """The events the operator's console got, in order."""
    with app.app_context():
        entries = bus.client().xrange(bus.keys(tenant_id).pops(operator_id))
    return [json.loads(fields[b"event"])["type"] for _id, fields in entries]


def _presence(app, tenant_id: int):
    with app.app_context():
        return decode_all(bus.presence(tenant_id).states())


def test_a_transfer_answered_in_12_s_is_answered_with_the_default_wait(app, database_url, pbx):
    peer = pbx("transfer_slow.xml", calls=9, timeout=40, fill={"notify_after": 12000})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101",))
    add_leads(app, tenant_id, [CUSTOMER])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), timeout=30, what="the attempt")
    peer.stop()
    (attempt,) = attempts_of(app, tenant_id)
    assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
        "answered",
        None,
        "succeeded",
    )
    assert 11.5 < (attempt.transfer_result_at - attempt.refer_at).total_seconds() < 14
    assert leads_of(app, tenant_id)[CUSTOMER].status == "reached"
    assert _console(app, tenant_id, operators["101"]) == ["screen_pop", "transferred"]


def test_a_transfer_answered_after_the_wait_is_corrected_by_the_late_notify(app, database_url, pbx):
    peer = pbx(
        "transfer_late_notify.xml",
        calls=9,  # REGISTERs and the call: stopped by the test
        timeout=40,
        fill={"late_after": 2000, "sipfrag": "SIP/2.0 200 OK", "late_answer": 200},
    )
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), transfer_wait_seconds=10
    )
    operator = operators["101"]
    add_leads(app, tenant_id, [CUSTOMER])
    go_on_line(app, tenant_id, operator)
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), timeout=20, what="the attempt")
        (first,) = attempts_of(app, tenant_id)
        assert (first.outcome, first.detail, first.transfer_result) == (
            "technical_error",
            "transfer_timeout",
            "failed",
        )
        lead = leads_of(app, tenant_id)[CUSTOMER]
        assert lead.status == "retry" and lead.next_attempt_at is not None
        assert _presence(app, tenant_id)[operator].state == "free"
        wait_until(
            lambda: attempts_of(app, tenant_id)[0].outcome == "answered",
            timeout=10,
            what="the correction",
        )
        (attempt,) = attempts_of(app, tenant_id)
        assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
            "answered",
            None,
            "succeeded",
        )
        assert (attempt.transfer_sip_code, attempt.transfer_sip_reason) == (200, "OK")
        assert 11.5 < (attempt.transfer_result_at - attempt.refer_at).total_seconds() < 14
        lead = leads_of(app, tenant_id)[CUSTOMER]
        assert (lead.status, lead.next_attempt_at, lead.last_outcome) == (
            "reached",
            None,
            "answered",
        )
        assert lead.last_operator_id == operator
        wait_until(lambda: _presence(app, tenant_id)[operator].state == "busy", timeout=3)
        assert _presence(app, tenant_id)[operator].lead_id == lead.id
        assert _console(app, tenant_id, operator) == [
            "screen_pop",
            "transfer_failed",
            "transferred",
        ]
    peer.stop()
    assert peer.result().logged("LATE-NOTIFY") == ["answered 200"]  # not 481
    assert len(attempts_of(app, tenant_id)) == 1  # no retry was dialed
