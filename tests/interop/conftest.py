"""Fixtures of the interop suite: a Kamailio per test (registrar and proxy, the tenant's PBX),
phones registered at it, and a tenant of ours whose SIP account points at it.

`transport` is the parameter a future TCP/TLS run extends; UDP only today (the engine speaks
UDP only). One database (SQLite) is enough here: the database parts are the engine suite's."""

from __future__ import annotations

import pytest

from tests.interop.kamailio import Kamailio
from tests.interop.kamailio import version as kamailio_version
from tests.interop.phones import BaresipPhone, PjsuaPhone, baresip_version, pjsua_version

TRANSPORTS = ["udp"]  # next: "tcp", "tls"

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


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


@pytest.fixture
def kamailio(tmp_path, transport):
    with Kamailio(tmp_path, USERS, transport) as proxy:
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
