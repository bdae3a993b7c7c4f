"""Metrics of the engine, read the way Prometheus reads them: an engine host dials a SIPp
PBX (or registers with a PBX that refuses it), publishes its counters and gauges to Redis,
and the web's /metrics shows them; the text is parsed with prometheus_client's parser."""

from __future__ import annotations

import re
import socket
import threading

from prometheus_client.parser import text_string_to_metric_families

from engine.sip.transaction import Timers
from tests.engine.dialing import (
    HostThread,
    add_leads,
    dialing_tenant,
    go_on_line,
    settled,
    wait_until,
)

ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE = (f"+1555000001{digit}" for digit in "0234")


def scrape(app) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = app.test_client().get("/metrics")  # the test client is 127.0.0.1
    assert response.status_code == 200, response.status_code
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def test_attempts_by_outcome_pacing_and_tenants_held(app, database_url, pbx):
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    add_leads(app, tenant_id, [ANSWERS, BUSY, NO_ANSWER, UNAVAILABLE])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url) as host:
        wait_until(settled(app, tenant_id, 4), what="four attempts")
        running = {}

        def held():
            running.update(scrape(app))
            return value(running, "autocall_engine_tenants_held", host=host.host.host_id) == 1

        wait_until(held, what="the host's gauges in /metrics")
        assert value(running, "autocall_engine_hosts_alive") == 1
        assert ("autocall_calls_in_flight", (("tenant", str(tenant_id)),)) in running
    samples = scrape(app)  # the host published its last counts as it stopped

    attempts = {
        (dict(labels)["outcome"], dict(labels)["detail"]): v
        for (name, labels), v in samples.items()
        if name == "autocall_attempts_total"
    }
    assert attempts == {
        ("answered", ""): 1,
        ("busy", ""): 1,
        ("no_answer", "ring_timeout"): 1,
        ("unavailable", ""): 1,
    }
    assert value(samples, "autocall_calls_started_total", tenant=tenant_id) == 4
    asked = value(samples, "autocall_pacer_calls_asked_total", tenant=tenant_id)
    assert asked >= 4  # the pacer may ask for more than the due leads
    # Stopped: no host, no gauges left behind.
    assert value(samples, "autocall_engine_hosts_alive") == 0
    assert not [key for key in samples if key[0] == "autocall_engine_tenants_held"]


class RefusingPBX:
    """A PBX on a real UDP socket that lets the first two copies of each REGISTER go
    unanswered (so our user agent retransmits each twice) and refuses the third with 403.
    It records every datagram, so the test knows exactly what was sent."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.host, self.port = self.socket.getsockname()
        self.copies: dict[str, int] = {}  # branch -> REGISTERs received
        self.refused: set[str] = set()
        self.dialer: tuple | None = None  # where our user agent sends from
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, source = self.socket.recvfrom(65535)
            except TimeoutError:
                continue
            text = data.decode()
            if not text.startswith("REGISTER "):
                continue
            self.dialer = source
            branch = re.search(r"branch=([^;\s]+)", text).group(1)
            self.copies[branch] = self.copies.get(branch, 0) + 1
            if self.copies[branch] == 3:
                head = {}
                for line in text.split("\r\n")[1:]:
                    name, _, rest = line.partition(":")
                    head.setdefault(name.strip().lower(), rest.strip())
                response = (
                    "SIP/2.0 403 Forbidden\r\n"
                    f"Via: {head['via']}\r\nFrom: {head['from']}\r\n"
                    f"To: {head['to']};tag=refuser\r\nCall-ID: {head['call-id']}\r\n"
                    f"CSeq: {head['cseq']}\r\nContent-Length: 0\r\n\r\n"
                )
                self.refused.add(branch)
                self.socket.sendto(response.encode(), source)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.socket.close()


def test_sip_retransmissions_registration_failures_and_strangers(app, database_url):
    refuser = RefusingPBX()
    try:
        tenant_id, operators = dialing_tenant(app, "Refused", refuser)
        go_on_line(app, tenant_id, *operators.values())
        timers = Timers(t1=0.05, t2=0.2, t4=0.2)
        with HostThread(database_url, timers=timers):
            wait_until(lambda: refuser.dialer is not None, what="a REGISTER")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                for _ in range(3):  # not the PBX: dropped unread, and counted
                    stranger.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", refuser.dialer)
            wait_until(
                lambda: (
                    value(scrape(app), "autocall_registration_failures_total", tenant=tenant_id)
                    >= 2
                    and value(scrape(app), "autocall_sip_strangers_total", tenant=tenant_id) == 3
                ),
                what="two registration failures and three strangers in /metrics",
            )
    finally:
        refuser.close()
    samples = scrape(app)
    retransmitted = sum(copies - 1 for copies in refuser.copies.values())
    assert len(refuser.refused) >= 2
    assert value(samples, "autocall_registration_failures_total", tenant=tenant_id) == len(
        refuser.refused
    )
    assert value(samples, "autocall_sip_retransmissions_total", tenant=tenant_id) == retransmitted
    assert retransmitted >= 2 * len(refuser.refused)
