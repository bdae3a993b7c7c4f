"""Webhooks after each attempt, end to end: a real engine host dials a SIPp PBX, its store
enqueues the webhook job of each batch of CDRs, a real RQ worker runs it, and a real HTTP
server on 127.0.0.1 receives one signed `attempt.finished` per attempt."""

from __future__ import annotations

from collections import Counter

from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    finish_as_they_come,
    go_on_line,
    leads_of,
    wait_until,
)
from tests.webapp.jobs import run_jobs
from tests.webapp.webhooks.receiver import Receiver
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import WebhookEndpoint

ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE = (f"+1555000002{digit}" for digit in "0234")


def test_the_receiver_gets_one_attempt_finished_per_attempt(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    phones = [ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE]
    with Receiver(200) as receiver, app.app_context():
        box = app.extensions["autocall.secrets"]
        db.session.add(
            WebhookEndpoint(
                tenant_id=tenant_id, url=receiver.url, secret_encrypted=box.encrypt("acme-secret")
            )
        )
        db.session.commit()
        add_leads(app, tenant_id, phones)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url, queue=queue(WEBHOOKS)):
            finish_as_they_come(app, tenant_id, len(phones))

            def all_received() -> bool:
                run_jobs(app)
                return len(receiver.received) >= len(phones)

            wait_until(all_received, what="one webhook per attempt")
        run_jobs(app)

    attempts = {a.id: a for a in attempts_of(app, tenant_id)}
    leads = {lead.id: lead for lead in leads_of(app, tenant_id).values()}
    assert len(attempts) == len(phones)
    bodies = [r.json for r in receiver.received]
    assert all(r.signed_with("acme-secret") for r in receiver.received)
    assert {b["event"] for b in bodies} == {"attempt.finished"}
    assert Counter(b["attempt"]["id"] for b in bodies) == Counter(list(attempts))  # once each
    for body in bodies:
        sent, attempt = body["attempt"], attempts[body["attempt"]["id"]]
        assert sent["phone"] == leads[attempt.lead_id].phone
        assert (sent["outcome"], sent["sip_code"]) == (attempt.outcome, attempt.sip_code)
        assert sent["end_at"] and sent["invite_at"].endswith("+00:00")
    by_phone = {b["attempt"]["phone"]: b["attempt"] for b in bodies}
    assert by_phone[ANSWERS]["outcome"] == "answered"
    assert by_phone[ANSWERS]["transfer_result"] == "succeeded"
    assert by_phone[ANSWERS]["operator_id"] in operators.values()
    assert (by_phone[BUSY]["outcome"], by_phone[BUSY]["sip_code"]) == ("busy", 486)
    assert by_phone[NO_ANSWER]["outcome"] == "no_answer"
    assert by_phone[UNAVAILABLE]["outcome"] == "unavailable"
