"""The operator's result, end to end: a real engine host dials a SIPp PBX and hands the
customer to an operator, the operator presses Finish in the console (a signed-in browser's
request), a real HTTP receiver gets the signed `attempt.result` with the result, and a
"Wrong number" (do not call) keeps the number from ever being dialed again, for this lead
or any other."""

from __future__ import annotations

from engine.presence import BUSY, decode_all
from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    go_on_line,
    settled,
    wait_until,
)
from tests.webapp.jobs import emptied, run_jobs
from tests.webapp.webhooks.receiver import Receiver
from webapp import bus
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import DoNotCall, Operator, WebhookEndpoint

ANSWERS, BUSY_NUMBER = "+15550000310", "+15550000322"


def busy_with_a_lead(app, tenant_id: int, operator_id: int) -> bool:
    with app.app_context():
        state = decode_all(bus.presence(tenant_id).states()).get(operator_id)
        return state is not None and state.state == BUSY and state.lead_id is not None


def test_a_wrong_number_is_posted_and_never_dialed_again(app, database_url, pbx, client, auth):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101",))
    operator_id = operators["101"]
    with app.app_context():
        db.session.get(Operator, operator_id).user.must_change_password = False
        db.session.commit()
    with Receiver(200) as receiver, app.app_context():
        emptied(queue(WEBHOOKS))
        box = app.extensions["autocall.secrets"]
        db.session.add(
            WebhookEndpoint(
                tenant_id=tenant_id, url=receiver.url, secret_encrypted=box.encrypt("acme-secret")
            )
        )
        db.session.commit()
        [first] = add_leads(app, tenant_id, [ANSWERS])
        go_on_line(app, tenant_id, operator_id)
        with HostThread(database_url, queue=queue(WEBHOOKS)):
            wait_until(settled(app, tenant_id, 1), what="the customer answered")
            wait_until(lambda: busy_with_a_lead(app, tenant_id, operator_id), what="the card")
            auth.login("op101@acme.example")
            finished = client.post(
                "/console/finish",
                data={"result": "Wrong number", "comment": "a bakery, not Mr Smith"},
                headers={"Accept": "application/json"},
            )
            assert finished.status_code == 200, (finished.status, finished.data[:300])
            assert finished.get_json()["state"] == "free"
            # The same number comes again from the CRM, with another lead to dial.
            add_leads(app, tenant_id, [ANSWERS, BUSY_NUMBER])
            wait_until(settled(app, tenant_id, 2), what="the other lead's attempt")
            wait_until(
                lambda: (
                    [lead.status for lead in leads_of_phone(app, tenant_id, ANSWERS)]
                    == ["do_not_call", "do_not_call"]
                ),
                what="the second lead of the number closed at its claim",
            )

            def both_events() -> bool:
                run_jobs(app)
                events = {r.json["event"] for r in receiver.received}
                return {"attempt.finished", "attempt.result"} <= events

            wait_until(both_events, what="the webhooks")

    attempts = attempts_of(app, tenant_id)
    dialed = [a for a in attempts if a.dialed_uri.startswith(f"sip:{ANSWERS}@")]
    assert len(dialed) == 1 and len(attempts) == 2  # the number once; the busy lead once
    [attempt] = dialed
    assert (attempt.result, attempt.result_action) == ("Wrong number", "do_not_call")
    with app.app_context():
        entries = db.session.scalars(
            db.select(DoNotCall).where(DoNotCall.tenant_id == tenant_id)
        ).all()
        assert [(e.number, e.prefix) for e in entries] == [(ANSWERS, False)]
    lead = next(lead for lead in leads_of_phone(app, tenant_id, ANSWERS) if lead.id == first)
    assert (lead.status, lead.next_attempt_at) == ("do_not_call", None)

    [result] = [r for r in receiver.received if r.json["event"] == "attempt.result"]
    assert result.signed_with("acme-secret") and not result.signed_with("other-secret")
    sent = result.json["attempt"]
    assert (sent["id"], sent["lead_id"], sent["phone"]) == (attempt.id, first, ANSWERS)
    assert (sent["result"], sent["comment"]) == ("Wrong number", "a bakery, not Mr Smith")
    assert (sent["result_action"], sent["call_back_at"]) == ("do_not_call", None)
    assert sent["result_at"].endswith("+00:00") and sent["operator_id"] == operator_id
    peer.stop()
    refer_to = f"sip:101@{peer.host}:{peer.port}"
    assert peer.result().logged("REFER-TO") == [f"{refer_to} FOR sip:{ANSWERS}"]


def leads_of_phone(app, tenant_id: int, phone: str):
    from webapp.models import Lead

    with app.app_context():
        rows = db.session.scalars(
            db.select(Lead)
            .where(Lead.tenant_id == tenant_id, Lead.phone == phone)
            .order_by(Lead.id)
        ).all()
        db.session.expunge_all()
        return rows
