"""The dialing engine end to end: a real engine host, real Redis, the real database (SQLite
and PostgreSQL), SIPp as the tenant's PBX (tests/sipp/pbx.xml: the last digit of the dialed
number says how the customer answers)."""

from __future__ import annotations

import time
from datetime import timedelta

from engine.sip.locate import Locator
from engine.sip.transaction import Timers
from tests.engine.dialing import (
    HostThread,
    PbxThread,
    add_leads,
    add_leads_through_the_api,
    attempts_of,
    calls_at_pbx,
    demo_pbx_tenant,
    dialing_tenant,
    engine_state,
    finish_as_they_come,
    go_on_line,
    leads_of,
    set_tenant,
    settled,
    wait_until,
)

ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE = (f"+1555000001{digit}" for digit in "0234")


def test_each_outcome_is_recorded_and_retried_after_its_retry_time(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    add_leads(app, tenant_id, [ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 4), what="four attempts")

    leads = leads_of(app, tenant_id)
    attempts = {a.lead_id: a for a in attempts_of(app, tenant_id)}
    assert len(attempts) == 4  # one attempt each, none dialed twice

    reached = attempts[leads[ANSWERS].id]
    assert (reached.outcome, reached.transfer_result) == ("answered", "succeeded")
    assert reached.sip_code == 200 and reached.operator_id in operators.values()
    extension = next(e for e, op in operators.items() if op == reached.operator_id)
    assert reached.refer_to == f"sip:{extension}@{peer.host}:{peer.port}"
    assert reached.engine and reached.answer_at and reached.refer_at and reached.end_at
    assert leads[ANSWERS].status == "reached"
    assert leads[ANSWERS].last_operator_id == reached.operator_id

    expected = {
        BUSY: ("busy", 486, 3),
        NO_ANSWER: ("no_answer", 487, 7),
        UNAVAILABLE: ("unavailable", 404, 11),
    }
    for phone, (outcome, code, minutes) in expected.items():
        lead, attempt = leads[phone], attempts[leads[phone].id]
        assert (attempt.outcome, attempt.sip_code) == (outcome, code), phone
        assert (lead.status, lead.last_outcome, lead.attempts) == ("retry", outcome, 1)
        retry_in = lead.next_attempt_at.replace(tzinfo=None) - attempt.end_at.replace(tzinfo=None)
        assert abs(retry_in - timedelta(minutes=minutes)) < timedelta(seconds=2), phone
    assert attempts[leads[NO_ANSWER].id].detail == "ring_timeout"

    peer.stop()
    assert peer.result().logged("REFER-TO") == [f"{reached.refer_to} FOR sip:{ANSWERS}"]


def test_an_account_set_to_tcp_registers_dials_and_transfers_over_tcp(app, database_url, pbx):
    """The SIP account's transport reaches the engine (through the store's AccountSettings):
    SIPp answers over TCP only, and the lead is reached and handed to an operator."""
    peer = pbx("pbx.xml", calls=50, timeout=60, transport="t1", fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, transport="tcp")
    add_leads(app, tenant_id, [ANSWERS])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), what="one attempt")
    (attempt,) = attempts_of(app, tenant_id)
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    peer.stop()
    seen = peer.result()
    assert "REGISTER sip:" in seen.messages and "Via: SIP/2.0/TCP " in seen.messages


def test_no_free_operator_at_answer_drops_the_customer(app, database_url, pbx):
    # Multiplier 2 with one operator: two customers answer, one operator to give them to.
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 400})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="multiplier", call_multiplier=2.0
    )
    first, second = "+15550000020", "+15550000030"
    add_leads(app, tenant_id, [first, second])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 2), what="two attempts")

    attempts = attempts_of(app, tenant_id)
    assert sorted((a.outcome, a.detail) for a in attempts) == [
        ("answered", None),
        ("technical_error", "no_free_operator"),
    ]
    dropped = next(a for a in attempts if a.detail == "no_free_operator")
    assert dropped.answer_at and dropped.refer_at is None and dropped.operator_id is None
    lead = next(lead for lead in leads_of(app, tenant_id).values() if lead.id == dropped.lead_id)
    assert (lead.status, lead.last_outcome) == ("retry", "technical_error")
    peer.stop()
    assert len(peer.result().logged("REFER-TO")) == 1


def overlap(attempts) -> int:
    """The most attempts that were in progress at the same moment."""
    edges = sorted([(a.invite_at, 1) for a in attempts] + [(a.end_at, -1) for a in attempts])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_the_multiplier_holds_the_number_of_calls_in_flight(app, database_url, pbx):
    # Two free operators x 1.5 = 3 calls at once; nobody answers, so they stay free.
    peer = pbx("pbx.xml", calls=100, timeout=60, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, pacing_mode="multiplier", call_multiplier=1.5
    )
    add_leads(app, tenant_id, [f"+1555000{n:02d}03" for n in range(9)])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 9), what="nine attempts")
    attempts = attempts_of(app, tenant_id)
    assert len(attempts) == 9 and {a.outcome for a in attempts} == {"no_answer"}
    assert overlap(attempts) == 3


def test_two_tenants_each_dial_their_own_pbx_and_transfer_to_their_own_operators(
    app, database_url, pbx
):
    peer_a = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    peer_b = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_a, operators_a = dialing_tenant(app, "Alpha", peer_a, extensions=("101", "102"))
    tenant_b, operators_b = dialing_tenant(app, "Bravo", peer_b, extensions=("201",))
    # Leads arrive through the REST API, as from each tenant's CRM.
    add_leads_through_the_api(app, tenant_a, ["+15550000040", "+15550000050", "+15550000060"])
    add_leads_through_the_api(app, tenant_b, ["+15550000070", "+15550000080"])
    go_on_line(app, tenant_a, *operators_a.values())
    go_on_line(app, tenant_b, *operators_b.values())
    with HostThread(database_url):
        # Operators are busy after a transfer until they finish the lead: the console's
        # "finish" frees them (here the test does it, as an operator would).
        for tenant, count in ((tenant_a, 3), (tenant_b, 2)):
            finish_as_they_come(app, tenant, count)

    for tenant, peer, extensions in (
        (tenant_a, peer_a, ("101", "102")),
        (tenant_b, peer_b, ("201",)),
    ):
        attempts = attempts_of(app, tenant)
        assert {a.outcome for a in attempts} == {"answered"}
        peer.stop()
        refers = peer.result().logged("REFER-TO")
        assert len(refers) == len(attempts)
        for line in refers:
            target = line.split(" FOR ")[0]
            assert target.removeprefix("sip:").split("@")[0] in extensions
            assert target.endswith(f"@{peer.host}:{peer.port}")


def test_numbers_on_the_do_not_call_list_are_never_dialed(app, database_url, pbx):
    from webapp.extensions import db
    from webapp.models import Tenant
    from webapp.services.leads import add_do_not_call

    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    blocked, by_prefix, allowed = "+15550000090", "+15559990010", "+15550000110"
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        add_do_not_call(tenant, blocked)
        add_do_not_call(tenant, "+1555999*")
    add_leads(app, tenant_id, [blocked, by_prefix, allowed])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 1), what="one attempt")
        wait_until(lambda: leads_of(app, tenant_id)[by_prefix].status == "do_not_call")
    leads = leads_of(app, tenant_id)
    assert leads[blocked].status == leads[by_prefix].status == "do_not_call"
    assert [a.lead_id for a in attempts_of(app, tenant_id)] == [leads[allowed].id]


def test_a_new_lead_wakes_the_engine_and_settings_reach_it_at_once(app, database_url, pbx):
    # The engine looks for due leads on its own only every 10 minutes here: what it dials
    # sooner, it dials because the portal woke it.
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url, idle_poll=600):
        wait_until(
            lambda: engine_state(app, tenant_id).get("reason") == "no_due_leads",
            what="an idle engine",
        )
        add_leads(app, tenant_id, ["+15550000122"])
        wait_until(settled(app, tenant_id, 1), timeout=20, what="the new lead dialed")
        set_tenant(app, tenant_id, dial_format="7{number}@{host}:{port}")
        add_leads(app, tenant_id, ["+15550000132"])
        wait_until(settled(app, tenant_id, 2), timeout=20, what="the second lead dialed")
        # A new SIP account: the engine registers it before it dials again.
        set_tenant(app, tenant_id, username="acme-second-trunk")
        add_leads(app, tenant_id, ["+15550000142"])
        wait_until(settled(app, tenant_id, 3), timeout=20, what="the third lead dialed")
    first, second, _ = attempts_of(app, tenant_id)
    assert first.dialed_uri == f"sip:+15550000122@{peer.host}:{peer.port}"
    assert second.dialed_uri == f"sip:715550000132@{peer.host}:{peer.port}"
    peer.stop()
    messages = peer.result().messages
    assert "REGISTER sip:" in messages and "From: <sip:acme-second-trunk@" in messages
    third_invite = messages[messages.index("INVITE sip:715550000142") :]
    assert 'From: "AutoCall" <sip:acme-second-trunk@' in third_invite.split("\n\n")[0]


def test_the_settings_pages_say_why_the_engine_is_not_dialing(app, database_url, pbx):
    from tests.conftest import PASSWORD

    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_id, _ = dialing_tenant(app, "Acme", peer)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.example", "password": PASSWORD})
    with HostThread(database_url):
        wait_until(lambda: engine_state(app, tenant_id).get("reason") == "no_operator_on_line")
        page = client.get("/settings/company").get_data(as_text=True)
        assert "Not dialing: No operator is on line." in page
        client.get("/lang/ru")
        page = client.get("/settings/company").get_data(as_text=True)
        assert "Обзвон не идёт: Нет операторов на линии." in page
    page = client.get("/settings/company").get_data(as_text=True)
    assert "движок запускается" in page  # stopped: on, but no engine runs it now


def test_a_draining_host_ends_its_calls_at_once_and_releases_its_tenants(app, database_url):
    """SIGTERM drains: the ringing calls are CANCELled at once (the PBX sees it), their
    attempts end `engine_stopped` and their leads wait for their retry; the lease is free."""
    import redis

    from engine.bus import TenantKeys
    from tests.conftest import REDIS_PREFIX, REDIS_URL

    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(app, "Acme", pbx, ring_timeout_seconds=30)
        add_leads(app, tenant_id, ["+15550000153", "+15550000163"])  # ...3: rings, no answer
        go_on_line(app, tenant_id, *operators.values())
        host = HostThread(database_url).__enter__()
        try:
            wait_until(lambda: len(calls_at_pbx(pbx.journal)) == 2, what="two calls ringing")
        finally:
            stopping = time.time()
            host.stop()  # what SIGTERM does: drain
        calls = calls_at_pbx(pbx.journal)
    assert [call.how for call in calls] == ["cancel", "cancel"]
    assert all(call.end - stopping < 1.5 for call in calls), calls
    attempts = attempts_of(app, tenant_id)
    assert {(a.outcome, a.detail) for a in attempts} == {("technical_error", "engine_stopped")}
    assert {lead.status for lead in leads_of(app, tenant_id).values()} == {"retry"}
    lease = TenantKeys(REDIS_PREFIX, tenant_id).lease
    assert redis.Redis.from_url(REDIS_URL).exists(lease) == 0


def test_a_pbx_whose_name_leads_into_a_private_network_is_not_sent_to(app, database_url):
    """Production allows no private SIP targets (AUTOCALL_SIP_ALLOW_PRIVATE): the settings
    refuse them, and the engine checks the address it resolves each time it starts, since a
    name checked when saved may point elsewhere since."""
    import socket

    from webapp.addresses import is_public

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.5)

        class Private:
            host, port = listener.getsockname()

        tenant_id, operators = dialing_tenant(app, "Acme", Private)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url, target_allowed=is_public):
            wait_until(lambda: engine_state(app, tenant_id).get("reason") == "pbx_unreachable")
            assert "not a public address" in engine_state(app, tenant_id)["detail"]
            try:
                received = listener.recv(65535)
            except TimeoutError:
                received = None
        assert received is None  # not even a REGISTER


def test_an_engine_bound_to_ipv4_says_so_at_once_when_the_pbx_is_ipv6(app, database_url):
    """The PBX at [::1], the engine's sockets bound to 127.0.0.1: the engine's state says
    why in words within its first ticks (not a call reported "no response" after 32 s),
    and nothing is sent."""
    import socket

    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as listener:
        listener.bind(("::1", 0))
        listener.settimeout(0.5)

        class Ipv6:
            host, port = "[::1]", listener.getsockname()[1]

        tenant_id, operators = dialing_tenant(app, "Acme", Ipv6)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url, local_host="127.0.0.1"):
            wait_until(lambda: engine_state(app, tenant_id).get("reason") == "pbx_unreachable")
            assert engine_state(app, tenant_id)["detail"] == (
                "[Errno 97] the PBX is at an IPv6 address (::1) and this engine uses IPv4 only "
                "(its SIP sockets bind 127.0.0.1: AUTOCALL_ENGINE_BIND); leave that setting "
                "empty to reach PBXes of both kinds"
            )
            try:
                received = listener.recv(65535)
            except TimeoutError:
                received = None
        assert received is None


def test_an_engine_whose_sip_port_range_is_used_up_says_so(app, database_url):
    """AUTOCALL_SIP_PORTS of one port, which something else holds: the engine's state says
    that this machine has no SIP port left (not that the PBX is unreachable)."""
    import socket

    from tests.sipp import free_udp_ports

    ports = free_udp_ports(1)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx_socket,
    ):
        holder.bind(("127.0.0.1", ports.first))
        pbx_socket.bind(("127.0.0.1", 0))

        class Pbx:
            host, port = pbx_socket.getsockname()

        tenant_id, operators = dialing_tenant(app, "Acme", Pbx)
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url, sip_ports=ports):
            wait_until(lambda: engine_state(app, tenant_id).get("reason") == "no_sip_port")
            assert (
                f"every UDP port of the SIP port range {ports} is taken"
                in (engine_state(app, tenant_id)["detail"])
            )


def test_two_campaigns_register_and_dial_through_two_sip_accounts_at_two_sipp_pbxes(
    app, database_url, pbx
):
    """The default campaign dials through the tenant's first SIP account (one SIPp PBX),
    "TV offer" through a second account at another SIPp PBX: each PBX sees the REGISTER of
    its own account, and the INVITEs of its campaign's customers only."""
    from sqlalchemy import update

    from webapp.extensions import db
    from webapp.models import Campaign, Lead, SipAccount, Tenant
    from webapp.services.campaigns import create_campaign

    first = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    second = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(app, "Acme", first)
    default = [f"+1555001{n:03d}2" for n in range(3)]  # busy
    tv = [f"+1555002{n:03d}2" for n in range(3)]
    add_leads(app, tenant_id, default + tv)
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        campaign = create_campaign(tenant, "TV offer", "tv-offer", None)
        account = SipAccount(
            tenant_id=tenant_id,
            name="TV trunk",
            host=second.host,
            port=second.port,
            username="tv-trunk",
        )
        db.session.add(account)
        db.session.flush()
        db.session.get(Campaign, campaign.id).sip_account_id = account.id
        db.session.execute(update(Lead).where(Lead.phone.in_(tv)).values(campaign_id=campaign.id))
        db.session.commit()
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        wait_until(settled(app, tenant_id, 6), what="six attempts")
    first.stop()
    second.stop()
    at_first, at_second = first.result().messages, second.result().messages
    assert "From: <sip:acme-trunk@" in at_first and "tv-trunk" not in at_first
    assert "From: <sip:tv-trunk@" in at_second and "acme-trunk" not in at_second
    for numbers, here, there in ((default, at_first, at_second), (tv, at_second, at_first)):
        for number in numbers:
            assert f"INVITE sip:{number}@" in here and f"INVITE sip:{number}@" not in there


def test_a_pbx_found_by_srv_records_is_dialed_through_its_live_server(
    app, database_url, pbx, dns_server
):
    """The SIP account names the PBX (`pbx.test`, the default port): its SRV records give
    two servers, the first dead. The engine registers at the second and dials through it;
    nothing is lost to the dead one but the time of one REGISTER."""
    first = pbx("pbx.xml", calls=5, fill={"ring_ms": 0})
    second = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 0})
    dns = dns_server(
        f"--srv-host=_sip._udp.pbx.test,first.pbx.test,{first.port},10,0",
        f"--srv-host=_sip._udp.pbx.test,second.pbx.test,{second.port},20,0",
        "--host-record=first.pbx.test,127.0.0.1",
        "--host-record=second.pbx.test,127.0.0.1",
    )
    first.stop()
    tenant_id, operators = dialing_tenant(app, "Acme", second, host="pbx.test", port=5060)
    add_leads(app, tenant_id, [ANSWERS, BUSY])
    go_on_line(app, tenant_id, *operators.values())
    locator = Locator(["127.0.0.1"], port=dns.port, timeout=2)
    with HostThread(database_url, timers=Timers(t1=0.05, t2=0.2, t4=0.2), locator=locator):
        wait_until(settled(app, tenant_id, 2), what="two attempts")
    attempts = {a.lead_id: a for a in attempts_of(app, tenant_id)}
    leads = leads_of(app, tenant_id)
    reached = attempts[leads[ANSWERS].id]
    assert (reached.outcome, reached.transfer_result) == ("answered", "succeeded")
    assert reached.refer_to.startswith("sip:10") and reached.refer_to.endswith("@pbx.test:5060")
    assert attempts[leads[BUSY].id].outcome == "busy"
    assert locator.queries > 0
    second.stop()
    assert second.result().logged("REFER-TO") == [f"{reached.refer_to} FOR sip:{ANSWERS}"]
