"""A SIP account's "Test connection" and "Test call", run by a real RQ worker (burst mode)
on the real Redis, against real SIP peers: SIPp playing the PBX, and a plain UDP socket
that never answers."""

import re
import socket

import pytest

from tests.webapp.jobs import run_jobs
from webapp.extensions import db
from webapp.models import SipAccount

T1 = 0.02  # SIP's T1 for these tests: a silent PBX is given up after 64 * T1 = 1.3 s


@pytest.fixture
def app(app):
    app.config["SIP_CHECK_T1"] = T1
    return app


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def set_account(
    app, tenant_id, port, password="", username="acme", name="PBX", transport="udp"
) -> str:
    """Saves an account of the tenant; the URL of its page."""
    with app.app_context():
        box = app.extensions["autocall.secrets"]
        account = SipAccount(
            tenant_id=tenant_id,
            name=name,
            host="127.0.0.1",
            port=port,
            username=username,
            password_encrypted=box.encrypt(password) if password else None,
            transport=transport,
        )
        db.session.add(account)
        db.session.commit()
        return f"/settings/sip/{account.id}"


def check_url(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert re.search(r"/settings/sip/\d+\?check=[0-9a-f\-]+#check$", location), location
    return location


def result_of(app, client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    assert "checking…" in page and "<progress" in page and "Refresh" in page
    check_id = url.split("check=")[1].split("#")[0]
    assert client.get(f"/settings/checks/{check_id}").get_json() == {"state": "waiting"}
    run_jobs(app)
    assert client.get(f"/settings/checks/{check_id}").get_json() == {"state": "done"}
    page = client.get(url).get_data(as_text=True)
    return page.split('id="check-result"')[1].split("</div>")[0]


def test_a_pbx_that_never_answers(app, client, admin):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        account = set_account(app, admin.id, silent.getsockname()[1], password="s3cret")
        result = result_of(app, client, check_url(client.post(f"{account}/test-connection")))
        silent.settimeout(1)
        assert silent.recv(65535).startswith(b"REGISTER sip:127.0.0.1:")
    assert "Test connection" in result
    assert "The PBX did not answer: check the host and the port" in result


def test_a_connection_the_pbx_refuses_is_told_with_its_reason(app, client, admin):
    """A TCP account at a port where nothing listens: the connection's own reason, not "did
    not answer"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        account = set_account(app, admin.id, port, password="s3cret", transport="tcp")
        result = result_of(app, client, check_url(client.post(f"{account}/test-connection")))
    assert "Cannot reach the PBX:" in result and "refused" in result
    assert "The PBX did not answer" not in result


def test_registered(app, client, admin, pbx):
    fill = {"nonce": "n", "username": "acme", "password": "s3cret", "expires": "60"}
    peer = pbx("register.xml", fill=fill)
    account = set_account(app, admin.id, peer.port, password="s3cret")
    result = result_of(app, client, check_url(client.post(f"{account}/test-connection")))
    assert peer.wait().succeeded
    assert "Registered: the PBX accepted the account (for 60 seconds)." in result


def test_a_wrong_password_is_refused(app, client, admin, pbx):
    fill = {"nonce": "n", "username": "acme", "password": "s3cret", "expires": "60"}
    peer = pbx("register.xml", fill=fill)
    account = set_account(app, admin.id, peer.port, password="wrong")
    result = result_of(app, client, check_url(client.post(f"{account}/test-connection")))
    peer.wait()
    assert "The PBX refused this account (403 Forbidden)." in result


def test_a_test_call_is_answered_and_transferred(app, client, admin, pbx):
    peer = pbx("transfer_ok.xml")
    account = set_account(app, admin.id, peer.port)  # no password: no REGISTER
    response = client.post(
        f"{account}/test-call", data={"number": "+1 212 555 0123", "extension": "104"}
    )
    result = result_of(app, client, check_url(response))
    seen = peer.wait()
    assert seen.succeeded
    assert seen.logged("REFER-TO") == [f"sip:104@127.0.0.1:{peer.port}"]
    assert "Test call" in result
    assert "Outcome: answered (SIP 200 OK)" in result
    assert "Transfer: transferred (SIP 200 OK)" in result
    assert f"Dialed sip:+12125550123@127.0.0.1:{peer.port}" in result


def test_a_test_call_needs_a_number_and_an_extension(app, client, admin):
    account = set_account(app, admin.id, 5060)
    page = client.post(f"{account}/test-call", data={"number": "12", "extension": "1 2"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "cannot be a phone number" in text and "no spaces" in text


def test_checks_need_a_complete_account(app, client, admin):
    account = set_account(app, admin.id, 5060, username="")
    response = client.post(f"{account}/test-connection", follow_redirects=True)
    assert "Enter and save the SIP account first." in response.get_data(as_text=True)
    assert client.post("/settings/sip/999999/test-connection").status_code == 404


def test_supervisors_see_no_buttons_and_cannot_check(app, client, auth, tenant_a):
    account = set_account(app, tenant_a.id, 5060)
    auth.login(tenant_a.supervisor_email)
    page = client.get(account).get_data(as_text=True)
    assert "Test connection" not in page and "test-call-form" not in page
    assert client.post(f"{account}/test-connection").status_code == 403
    assert client.post(f"{account}/test-call", data={"number": "+12125550123"}).status_code == 403


def test_another_tenants_check_is_not_shown(app, client, auth, tenant_a, tenant_b):
    account = set_account(app, tenant_b.id, 5060)
    auth.login(tenant_b.admin_email)
    url = check_url(client.post(f"{account}/test-connection"))
    check_id = url.split("check=")[1].split("#")[0]
    auth.logout()
    auth.login(tenant_a.admin_email)
    assert client.get(f"/settings/checks/{check_id}").status_code == 404
    assert client.get(url).status_code == 404  # another tenant's account
    own = set_account(app, tenant_a.id, 5060)
    assert "check-running" not in client.get(f"{own}?check={check_id}").get_data(as_text=True)
    with app.app_context():
        from rq.job import Job

        from webapp import bus

        Job.fetch(check_id, connection=bus.client()).delete()


def test_production_checks_send_nothing_into_a_private_network(app, client, admin):
    """A PBX saved before the SIP page refused private addresses (or a name that resolves to
    one since): the checks refuse it too, and send nothing."""
    import dataclasses

    config = app.extensions["autocall.config"]
    app.extensions["autocall.config"] = dataclasses.replace(config, env="production")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.setblocking(False)
            account = set_account(app, admin.id, silent.getsockname()[1], password="s3cret")
            connection = client.post(f"{account}/test-connection")
            result = result_of(app, client, check_url(connection))
            call = client.post(
                f"{account}/test-call", data={"number": "+1 212 555 0123", "extension": "104"}
            )
            call_result = result_of(app, client, check_url(call))
            with pytest.raises(BlockingIOError):
                silent.recv(65535)  # not a datagram came
    finally:
        app.extensions["autocall.config"] = config
    for words in (result, call_result):
        assert "127.0.0.1 is 127.0.0.1, a private, loopback or link-local address" in words


def test_a_production_check_sends_only_to_addresses_it_checked():
    """The user agent checks every address DNS gives it and keeps only those as its targets:
    it sends to nothing else (its outbound proxy's, when it has one), so a DNS answer that
    changes after the check cannot slip a private one in."""
    import asyncio

    from engine.sip.ua import Account, TargetRefused, UserAgent
    from webapp.addresses import is_public

    async def targets(account: Account) -> list:
        async with UserAgent(account, local_host="127.0.0.1", target_allowed=is_public) as ua:
            return ua.targets

    assert asyncio.run(targets(Account("8.8.8.8", 5070, "acme"))) == [("8.8.8.8", 5070)]
    proxied = Account("pbx.internal", 5060, outbound_proxy=("1.1.1.1", 5080))
    assert asyncio.run(targets(proxied)) == [("1.1.1.1", 5080)]
    with pytest.raises(TargetRefused) as refused:
        asyncio.run(targets(Account("8.8.8.8", 5060, outbound_proxy=("10.0.0.1", 5060))))
    assert (refused.value.host, refused.value.address) == ("10.0.0.1", "10.0.0.1")


def test_a_check_shows_on_its_own_accounts_page_only(app, client, admin):
    first = set_account(app, admin.id, 5060)
    second = set_account(app, admin.id, 5062, name="Second")
    url = check_url(client.post(f"{first}/test-connection"))
    check_id = url.split("check=")[1].split("#")[0]
    assert "check-running" in client.get(url).get_data(as_text=True)
    assert "check-running" not in client.get(f"{second}?check={check_id}").get_data(as_text=True)
    with app.app_context():
        from rq.job import Job

        from webapp import bus

        job = Job.fetch(check_id, connection=bus.client())
        assert job.args == (admin.id, int(first.rsplit("/", 1)[1]))
        job.delete()


def test_a_test_call_rings_and_waits_as_the_engine_would_through_the_account(app, admin):
    from sqlalchemy import select

    from webapp.models import Campaign
    from webapp.settings.checks import RING_TIMEOUT_SECONDS, job_timeout, ring_timeout

    first = int(set_account(app, admin.id, 5060).rsplit("/", 1)[1])
    second = int(set_account(app, admin.id, 5062, name="Second").rsplit("/", 1)[1])
    with app.app_context():
        default = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == admin.id, Campaign.is_default)
        )
        default.sip_account_id, default.ring_timeout_seconds = first, 45
        db.session.commit()
        one, two = db.session.get(SipAccount, first), db.session.get(SipAccount, second)
        assert (ring_timeout(one), ring_timeout(two)) == (45, RING_TIMEOUT_SECONDS)
        # the ring time and the account's wait for the transfer's result, and some slack
        assert job_timeout(one, True) - job_timeout(one, False) == 45 + 30 + 30


def test_a_check_goes_out_from_the_sip_port_range_with_the_public_address(app, client, admin):
    """The checks use the engines' own network settings (AUTOCALL_SIP_PORTS,
    AUTOCALL_SIP_PUBLIC_ADDRESS): a PBX's firewall that lets the engines in lets them in."""
    import dataclasses

    from tests.sipp import free_udp_ports

    ports = free_udp_ports(1)
    config = app.extensions["autocall.config"]
    app.extensions["autocall.config"] = dataclasses.replace(
        config, sip_ports=str(ports), sip_public_address="198.51.100.9"
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            account = set_account(app, admin.id, silent.getsockname()[1], password="s3cret")
            result_of(app, client, check_url(client.post(f"{account}/test-connection")))
            silent.settimeout(1)
            register, source = silent.recvfrom(65535)
    finally:
        app.extensions["autocall.config"] = config
    assert source == ("127.0.0.1", ports.first)
    assert f"Contact: <sip:acme@198.51.100.9:{ports.first}>" in register.decode()
