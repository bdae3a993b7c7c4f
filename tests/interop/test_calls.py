"""Our engine against real SIP software nobody here wrote (docs/sip.md, "The interop suite"):
Kamailio is the tenant's PBX (registrar, digest auth, record-routing proxy), PJSIP phones are
the customer's phone (it follows our REFER and calls the operator itself, through Kamailio)
and an operator's, baresip is another operator's. Each flow is checked at the phones (who rang,
who was transferred to whom) and in the attempt the engine wrote. The trunk (our SIP account)
talks UDP to Kamailio in every flow, and TCP and TLS in those marked `every_transport`."""

from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import select

from engine.sip.locate import Locator
from engine.sip.transaction import Timers
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
from tests.interop.conftest import CUSTOMER, TRUNK, TRUNK_PASSWORD, every_transport
from webapp.extensions import db
from webapp.models import SipAccount

pytestmark = pytest.mark.slow  # a minute and more: real SIP software, calls in real time


def tenant_at(app, kamailio, extensions=("101",), password=TRUNK_PASSWORD, **settings):
    """A tenant whose SIP account is the trunk at Kamailio, its operators on line, one lead
    (the customer)."""
    with app.app_context():
        secret = app.extensions["autocall.secrets"].encrypt(password)
    settings.setdefault("ring_timeout_seconds", 15)
    settings.setdefault("transport", kamailio.transport)
    settings.setdefault("tls_ca_pem", kamailio.ca_pem)
    if settings["transport"] != "udp":
        # The customer's phone calls the operator itself, at the Refer-To's address: the
        # PBX's side it reaches (UDP), not the trunk's TCP/TLS port; the tenant says so in
        # the REFER format, as one would for a PBX with another address for its phones.
        settings.setdefault("refer_format", f"{{extension}}@127.0.0.1:{kamailio.udp_port}")
    tenant_id, operators = dialing_tenant(
        app,
        "Acme",
        kamailio,
        extensions,
        username=TRUNK,
        password_encrypted=secret,
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


@every_transport
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
    # the REFER went in dialog through Kamailio, which challenged it; we answered
    assert kamailio.logged(f"REFER from {TRUNK} challenged")
    assert kamailio.logged(f"REFER from {TRUNK} authenticated")
    assert kamailio.logged(f"INVITE from {TRUNK} over {kamailio.transport}")  # the trunk's


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


@every_transport
def test_a_busy_customer(app, database_url, kamailio, phones):
    operator = phones("101")
    customer = phones(CUSTOMER, answer="busy")
    tenant_id, _operators = tenant_at(app, kamailio)
    attempt = one_attempt(app, database_url, tenant_id)

    customer.events.wait("incoming", 5)
    assert (attempt.outcome, attempt.sip_code, attempt.refer_at) == ("busy", 486, None)
    assert leads_of(app, tenant_id)[CUSTOMER].status == "retry"
    assert customer.events.of("transfer_request") == [] and operator.events.of("incoming") == []


def test_a_customer_who_does_not_answer(app, database_url, kamailio, phones):
    customer = phones(CUSTOMER, answer="ring")
    tenant_id, _operators = tenant_at(app, kamailio, ring_timeout_seconds=2)
    attempt = one_attempt(app, database_url, tenant_id)

    customer.events.wait("incoming", 5)
    gone = customer.events.wait("call_state", 5, role="callee", state="DISCONNECTED")
    assert gone["code"] == 487  # our CANCEL, through Kamailio
    assert (attempt.outcome, attempt.detail, attempt.sip_code) == (
        "no_answer",
        "ring_timeout",
        487,
    )


@every_transport
def test_a_customer_phone_that_refuses_refer(app, database_url, kamailio, phones):
    operator = phones("101")
    customer = phones(CUSTOMER, answer="answer", refer=603)
    tenant_id, _operators = tenant_at(app, kamailio)
    attempt = one_attempt(app, database_url, tenant_id)

    assert customer.events.wait("transfer_request", 5)["answered"] == 603
    assert customer.events.of("call_state", role="transfer") == []
    assert operator.events.of("incoming") == []
    assert (attempt.outcome, attempt.detail) == ("technical_error", "refer_refused")
    assert (attempt.transfer_result, attempt.transfer_sip_code) == ("failed", 603)


def test_an_operator_whose_phone_is_not_registered(app, database_url, kamailio, phones):
    customer = phones(CUSTOMER, answer="answer")
    tenant_id, _operators = tenant_at(app, kamailio, extensions=("103",))
    attempt = one_attempt(app, database_url, tenant_id)

    assert "sip:103@" in customer.events.wait("transfer_request", 5)["target"]
    failed = customer.events.wait("call_state", 5, role="transfer", state="DISCONNECTED")
    assert failed["code"] == 480  # Kamailio: known, not registered; the NOTIFY says so
    assert (attempt.outcome, attempt.detail) == ("technical_error", "transfer_failed")
    assert (attempt.transfer_result, attempt.transfer_sip_code) == ("failed", 480)


@every_transport
def test_a_wrong_password_is_told_to_the_admin(app, database_url, kamailio, phones):
    customer = phones(CUSTOMER)
    tenant_id, _operators = tenant_at(app, kamailio, password="not-the-password")
    with HostThread(database_url):
        wait_until(
            lambda: engine_state(app, tenant_id).get("registration") == "failed",
            timeout=15,
            what=lambda: f"a failed registration: {engine_state(app, tenant_id)}",
        )
        state = engine_state(app, tenant_id)
    assert state["registration_detail"] == "wrong username or password"
    assert attempts_of(app, tenant_id) == [] and customer.events.of("incoming") == []


@every_transport
def test_a_hold_from_the_customer_phone_is_answered_recvonly(app, database_url, kamailio, phones):
    operator = phones("101", answer="answer", answer_after=3)
    customer = phones(CUSTOMER, answer="answer", hold=True)
    tenant_id, _operators = tenant_at(app, kamailio)
    attempt = one_attempt(app, database_url, tenant_id)

    answer = customer.events.wait("hold_answer", 5)
    # RFC 3264 section 6.1: an offer of sendonly is answered recvonly or inactive
    assert answer["code"] == 200 and answer["directions"] in (["recvonly"], ["inactive"])
    operator.events.wait("call_state", 5, role="callee", state="CONFIRMED")
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


def test_a_transfer_answered_after_20_s_is_a_success(app, database_url, kamailio, phones):
    operator = phones("101", answer="answer", answer_after=21)
    customer = phones(CUSTOMER, answer="answer")
    tenant_id, operators = tenant_at(app, kamailio)
    with app.app_context():
        account = db.session.scalar(select(SipAccount).where(SipAccount.tenant_id == tenant_id))
        assert account.transfer_wait_seconds == 30  # the default
    attempt = one_attempt(app, database_url, tenant_id, timeout=60)

    operator.events.wait("call_state", 5, role="callee", state="CONFIRMED")
    called = customer.events.wait("call_state", 5, role="transfer", state="CONFIRMED")
    assert "sip:101@" in called["remote"]
    assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
        "answered",
        None,
        "succeeded",
    )
    assert attempt.operator_id == operators["101"] and attempt.transfer_sip_code == 200
    # the phone rang 21 s before it answered: load can only make it longer
    assert (attempt.transfer_result_at - attempt.refer_at).total_seconds() >= 20


def test_the_pbx_found_by_its_srv_records(app, database_url, kamailio, phones, dns_server):
    """The SIP account names the PBX `pbx.test` at the default port. A DNS server (dnsmasq
    on loopback) gives `_sip._udp.pbx.test` two servers: a silent one first, Kamailio second.
    The engine registers at Kamailio after the first one's silence, and the call is answered
    and transferred through it."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # reads, never answers
    silent.bind(("127.0.0.1", 0))
    silent.settimeout(0)
    dead = silent.getsockname()[1]
    dns = dns_server(
        f"--srv-host=_sip._udp.pbx.test,dead.pbx.test,{dead},10,0",
        f"--srv-host=_sip._udp.pbx.test,kamailio.pbx.test,{kamailio.udp_port},20,0",
        "--host-record=dead.pbx.test,127.0.0.1",
        "--host-record=kamailio.pbx.test,127.0.0.1",
    )
    operator = phones("101", answer="answer", answer_after=1)
    customer = phones(CUSTOMER, answer="answer", answer_after=1)
    # The customer's phone follows the Refer-To with its own resolver: Kamailio's address.
    refer = f"{{extension}}@127.0.0.1:{kamailio.udp_port}"
    tenant_id, operators = tenant_at(app, kamailio, host="pbx.test", port=5060, refer_format=refer)
    locator = Locator(["127.0.0.1"], port=dns.port, timeout=2)
    # T1 of 0.1 s: the dead server's REGISTER is given up after 6.4 s, not 32 s.
    with HostThread(database_url, locator=locator, timers=Timers(t1=0.1, t2=0.4, t4=0.5)):
        wait_until(settled(app, tenant_id, 1), timeout=45, what="the attempt")
        assert engine_state(app, tenant_id).get("registration") == "registered"
    (attempt,) = attempts_of(app, tenant_id)
    with silent:
        assert silent.recv(65535).startswith(b"REGISTER sip:pbx.test:5060 ")  # tried first

    assert attempt.dialed_uri == f"sip:{CUSTOMER}@pbx.test:5060"
    assert TRUNK in customer.events.wait("incoming", 5)["remote"]  # relayed by Kamailio
    assert "sip:101@" in customer.events.wait("transfer_request", 5)["target"]
    assert CUSTOMER in operator.events.wait("incoming", 5)["remote"]
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert attempt.operator_id == operators["101"]
    assert locator.queries > 0  # the SRV records and the targets' addresses
