"""Fixtures of the SIP tests.

Every parser test runs against both implementations: the Cython one and its pure twin.
The Cython module is imported unconditionally: if it was not built, these tests error out
rather than quietly testing the twin twice.

The PBX's DNS is dnsmasq on loopback (`dns_server`, tests/dnsmasq.py).
"""

import pytest

from engine.sip import _parser, parser

IMPLEMENTATIONS = {"c-parser": _parser, "py-parser": parser}


@pytest.fixture(params=list(IMPLEMENTATIONS.values()), ids=list(IMPLEMENTATIONS))
def impl(request):
    """The parser module under test; use `impl.parse`, `impl.Request`, `impl.Response`."""
    return request.param


@pytest.fixture
def dns_server(tmp_path):
    """Start dnsmasq serving the records given (dnsmasq options, and `ttl=`) on 127.0.0.1;
    stopped after the test."""
    from tests.dnsmasq import DnsServer

    started = []

    def start(*records: str, ttl: int = 60) -> DnsServer:
        server = DnsServer(tmp_path, list(records), ttl=ttl)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
