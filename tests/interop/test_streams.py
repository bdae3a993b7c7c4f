"""Bad input over TCP and TLS, shown at the engine's level (its state, the attempts it wrote)
against Kamailio: a PBX that goes away in the middle of a call and comes back, and a PBX that
does not speak what the SIP account chose. tests/engine/sip/test_stream.py and test_tls.py
hold the same at the user agent's level (reconnection, certificates, framing)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.engine.dialing import (
    HostThread,
    attempts_of,
    engine_state,
    go_on_line,
    leads_of,
    settled,
    wait_until,
)
from tests.interop.conftest import CUSTOMER
from tests.interop.test_calls import tenant_at
from webapp import bus
from webapp.extensions import db
from webapp.models import Lead

pytestmark = pytest.mark.slow  # real SIP software, calls in real time


def make_due_now(app, tenant_id: int) -> None:
    """The lead's retry is due now, not in the campaign's minutes; the engine is told."""
    with app.app_context():
        lead = db.session.scalar(select(Lead).where(Lead.tenant_id == tenant_id))
        lead.next_attempt_at = datetime.now(UTC)
        db.session.commit()
        bus.wake_engine(tenant_id, "new_lead")  # as when a lead comes in


def attempts_ended(app, tenant_id: int, count: int):
    """`count` attempts written, all ended (one lead may have several)."""

    def check() -> bool:
        attempts = attempts_of(app, tenant_id)
        return len(attempts) >= count and all(a.outcome is not None for a in attempts)

    return check


@pytest.mark.transports("tcp", "tls")
def test_a_pbx_that_closes_the_connection_mid_call(app, database_url, kamailio, phones):
    """Kamailio stops while the customer's phone rings: its connection to us closes, and the
    answers to our INVITE can no longer come (a PBX answers on the connection the request came
    by). The attempt ends at once as our trouble, not the customer's; when Kamailio is back,
    the engine connects again and the next call goes through."""
    customer = phones(CUSTOMER, answer="ring")
    tenant_id, operators = tenant_at(app, kamailio, retry_technical_error_minutes=60)
    with HostThread(database_url):
        customer.events.wait("incoming", 15, what="the first call")
        kamailio.stop()
        wait_until(
            settled(app, tenant_id, 1),
            timeout=10,  # the ring timeout is 15 s: the attempt must not wait for it
            what=lambda: f"the attempt ended: {engine_state(app, tenant_id)}",
        )
        (first,) = attempts_of(app, tenant_id)
        assert (first.outcome, first.detail) == ("technical_error", "no_response")
        lead = leads_of(app, tenant_id)[CUSTOMER]
        assert (lead.status, lead.last_outcome) == ("retry", "technical_error")

        kamailio.start()  # the same ports; the phones register again
        operator = phones("101", answer="answer", answer_after=1)
        phones(CUSTOMER, answer="answer", answer_after=1)
        go_on_line(app, tenant_id, *operators.values())  # the console's heartbeat
        make_due_now(app, tenant_id)
        wait_until(
            attempts_ended(app, tenant_id, 2),
            timeout=40,  # the reconnection's backoff, then a call and its transfer
            what=lambda: f"the second attempt: {engine_state(app, tenant_id)}",
        )
    second = next(a for a in attempts_of(app, tenant_id) if a.id != first.id)
    assert (second.outcome, second.transfer_result) == ("answered", "succeeded")
    assert second.operator_id == operators["101"]
    operator.events.wait("call_state", 5, role="callee", state="CONFIRMED")
    assert leads_of(app, tenant_id)[CUSTOMER].status == "reached"


@pytest.mark.transports("udp", "tcp")
def test_tls_chosen_where_the_pbx_does_not_speak_it(app, database_url, kamailio, phones):
    """The SIP account says TLS, at Kamailio's port: over UDP only nothing listens on TCP
    there (refused); over TCP the port takes the connection but no TLS handshake. The
    registration says which, in words, and nothing is dialed."""
    customer = phones(CUSTOMER)
    tenant_id, _operators = tenant_at(app, kamailio, transport="tls")
    with HostThread(database_url):
        wait_until(
            lambda: engine_state(app, tenant_id).get("registration") == "failed",
            timeout=20,
            what=lambda: f"a failed registration: {engine_state(app, tenant_id)}",
        )
        state = engine_state(app, tenant_id)
    where = f"the PBX at 127.0.0.1:{kamailio.port}"
    said = {
        "udp": f"{where} refused the connection: nothing listens there on TCP",
        "tcp": f"the TLS handshake with {where} failed",
    }[kamailio.transport]
    assert said in state["registration_detail"], state
    assert state["reason"] == "registration_failed", state
    assert attempts_of(app, tenant_id) == [] and customer.events.of("incoming") == []
    assert leads_of(app, tenant_id)[CUSTOMER].status == "new"
