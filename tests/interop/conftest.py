"""Fixtures of the interop suite: a Kamailio per test (registrar and proxy, the tenant's PBX),
phones registered at it, and a tenant of ours whose SIP account points at it.

`transport` is the trunk's transport (our SIP account's, and the Kamailio port it points at):
every flow runs over UDP; those marked `every_transport` over TCP and TLS too (the phones stay
on UDP: Kamailio bridges). One database (SQLite) is enough here: the database parts are the
engine suite's."""

from __future__ import annotations

import pytest

from tests.interop.kamailio import Kamailio
from tests.interop.kamailio import version as kamailio_version
from tests.interop.phones import BaresipPhone, PjsuaPhone, baresip_version, pjsua_version
from tests.kamailio import Certificate, make_ca, make_server_certificate

TRANSPORTS = ["udp", "tcp", "tls"]

#: A flow that runs over every transport in TRANSPORTS; the others run over UDP only, to keep
#: the suite's time reasonable (each flow is calls in real time).
every_transport = pytest.mark.transports(*TRANSPORTS)

#: The tenant's SIP account at Kamailio, and every phone's credentials there.
TRUNK, TRUNK_PASSWORD = "acme-trunk", "trunk-secret"
CUSTOMER = "+15550000010"
USERS = {
    TRUNK: TRUNK_PASSWORD,
    CUSTOMER: "customer-secret",
    "101": "secret-101",  # the PJSIP operator
    "102": "secret-102",  # the baresip operator
    "103": "secret-103",  # an operator whose phone is off (never registered)
}


@pytest.fixture(scope="session", autouse=True)
def _versions(pytestconfig) -> None:
    """Say which software the suite ran against (shown with the test session's output)."""
    line = (
        f"interop against {kamailio_version()}, pjsua2-python {pjsua_version()}, "
        f"{baresip_version()}"
    )
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


def pytest_generate_tests(metafunc) -> None:
    """`transport`: UDP, or those the test's `transports` mark names."""
    if "transport" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("transports")
        metafunc.parametrize("transport", list(marked.args) if marked else ["udp"])


@pytest.fixture(scope="session")
def ca() -> Certificate:
    """The test CA the tenant uploads for TLS, and that signed Kamailio's certificate."""
    return make_ca()


@pytest.fixture(scope="session")
def certificate(ca) -> Certificate:
    return make_server_certificate(ca, "localhost")


@pytest.fixture
def kamailio(tmp_path, transport, ca, certificate):
    with Kamailio(tmp_path, USERS, transport, certificate, ca.cert_pem) as proxy:
        yield proxy


@pytest.fixture
def phones(kamailio):
    """Start phones registered at Kamailio: `phones(user, **behaviour)` for PJSIP,
    `phones(user, baresip=True)` for baresip; all stopped at the end."""
    started: list[PjsuaPhone | BaresipPhone] = []

    def start(user: str, baresip: bool = False, **behaviour):
        phone = (
            BaresipPhone(kamailio, user, USERS[user])
            if baresip
            else PjsuaPhone(kamailio, user, USERS[user], **behaviour)
        )
        started.append(phone)
        return phone.registered()

    yield start
    for phone in started:  # all at once: each takes a moment to unregister
        phone.hang_up()
    for phone in started:
        phone.stop()
