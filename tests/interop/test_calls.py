"""Our engine against real SIP software nobody here wrote (docs/sip.md, "The interop suite"):
Kamailio is the tenant's PBX (registrar, digest auth, record-routing proxy), PJSIP phones are
the customer's phone (it follows our REFER and calls the operator itself, through Kamailio)
and an operator's, baresip is another operator's. Each flow is checked at the phones (who rang,
who was transferred to whom) and in the attempt the engine wrote."""

from __future__ import annotations

import re

from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    engine_state,
    go_on_line,
    leads_of,
    settled,
    wait_until,
)
from tests.interop.conftest import CUSTOMER, TRUNK, TRUNK_PASSWORD


def tenant_at(app, kamailio, extensions=("101",), password=TRUNK_PASSWORD, **settings):
    """A tenant whose SIP account is the trunk at Kamailio, its operators on line, one lead
    (the customer)."""
    with app.app_context():
        secret = app.extensions["autocall.secrets"].encrypt(password)
    settings.setdefault("ring_timeout_seconds", 15)
    tenant_id, operators = dialing_tenant(
        app,
        "Acme",
        kamailio,
        extensions,
        username=TRUNK,
        password_encrypted=secret,
        transport=kamailio.transport,
        **settings,
    )
    add_leads(app, tenant_id, [CUSTOMER])
    go_on_line(app, tenant_id, *operators.values())
    return tenant_id, operators


def one_attempt(app, database_url, tenant_id, timeout=30.0):
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), timeout=timeout, what="the attempt")
    (attempt,) = attempts_of(app, tenant_id)
    return attempt


def test_answered_and_transferred_to_the_pjsip_operator(app, database_url, kamailio, phones):
    operator = phones("101", answer="answer", answer_after=1)
    customer = phones(CUSTOMER, answer="answer", answer_after=1)
    tenant_id, operators = tenant_at(app, kamailio)
    attempt = one_attempt(app, database_url, tenant_id)

    rang = customer.events.wait("incoming", 5)
    assert TRUNK in rang["remote"] and rang["request_uri"].startswith(f"sip:{CUSTOMER}@")
    request = customer.events.wait("transfer_request", 5)
    assert "sip:101@" in request["target"] and request["answered"] == 202
    called = customer.events.wait("call_state", 5, role="transfer", state="CONFIRMED")
    assert "sip:101@" in called["remote"]
    transferred = operator.events.wait("incoming", 5)
    assert CUSTOMER in transferred["remote"]  # the customer's phone called, not we
    operator.events.wait("call_state", 5, role="callee", state="CONFIRMED")

    assert (attempt.outcome, attempt.sip_code, attempt.transfer_result) == (
        "answered",
        200,
        "succeeded",
    )
    assert attempt.operator_id == operators["101"] and attempt.transfer_sip_code == 200
    assert leads_of(app, tenant_id)[CUSTOMER].status == "reached"


def test_transferred_to_the_baresip_operator(app, database_url, kamailio, phones):
    operator = phones("102", baresip=True)
    customer = phones(CUSTOMER, answer="answer", answer_after=1)
    tenant_id, operators = tenant_at(app, kamailio, extensions=("102",))
    attempt = one_attempt(app, database_url, tenant_id)

    assert "sip:102@" in customer.events.wait("transfer_request", 5)["target"]
    called = customer.events.wait("call_state", 5, role="transfer", state="CONFIRMED")
    assert "sip:102@" in called["remote"]
    operator.wait_for(rf"answering call .* from sip:{re.escape(CUSTOMER)}@", 5)
    operator.wait_for(rf"Call established: sip:{re.escape(CUSTOMER)}@", 5)
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert attempt.operator_id == operators["102"]
