"""Crash safety: the database is the source of truth. A host killed with SIGKILL in the
middle of calls, Redis restarted, the PBX gone for a while: every lead ends in a correct
state, no lead is ever in two calls at once, no attempt is lost.

The engine hosts here are real RQ workers (`python -m webapp.jobs engines`) fed by the
same `ensure_hosts` job the cron scheduler runs, against a Redis of the test's own (so it
can be restarted without disturbing anything else)."""

from __future__ import annotations

import itertools
import time

import pytest

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
from tests.engine.processes import PrivateRedis, Worker


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def config_overrides(private_redis):
    return {"redis_url": private_redis.url}


def in_progress(app, tenant_id: int) -> int:
    return sum(a.outcome is None for a in attempts_of(app, tenant_id))


def never_twice_at_once(attempts) -> None:
    by_lead: dict[int, list] = {}
    for attempt in attempts:
        by_lead.setdefault(attempt.lead_id, []).append(attempt)
    for lead_attempts in by_lead.values():
        ordered = sorted(lead_attempts, key=lambda a: a.invite_at)
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.end_at <= later.invite_at, "a lead was in two calls at once"


def test_kill_9_a_host_mid_call_and_restart_redis(app, database_url, pbx, private_redis, tmp_path):
    peer = pbx("pbx.xml", calls=200, timeout=120, fill={"ring_ms": 2000})
    tenant_id, operators = dialing_tenant(
        app,
        "Acme",
        peer,
        pacing_mode="multiplier",
        call_multiplier=2.0,
        wrap_up_timeout_seconds=1,
        retry_technical_error_minutes=0,
        ring_timeout_seconds=10,
        transfer_wait_seconds=10,  # the killed engine's calls are waited out that much less
    )
    phones = [f"+1555000{n:02d}00" for n in range(8)]
    add_leads(app, tenant_id, phones)
    go_on_line(app, tenant_id, *operators.values())

    first = Worker(database_url, private_redis.url, tmp_path)
    try:
        first.enqueue_hosts()
        wait_until(lambda: in_progress(app, tenant_id) >= 2, what="calls in flight")
        first.kill(private_redis.url)  # SIGKILL, in the middle of ringing calls
    finally:
        first.stop()
    lost = in_progress(app, tenant_id)
    assert lost >= 2

    private_redis.restart()  # leases, presence and queues are gone
    go_on_line(app, tenant_id, *operators.values())  # consoles publish their presence again
    second = Worker(database_url, private_redis.url, tmp_path)
    try:
        second.enqueue_hosts()
        wait_until(
            settled(app, tenant_id, len(phones)),
            timeout=60,
            what=lambda: f"all leads attempted: {engine_state(app, tenant_id)}",
        )
        wait_until(
            lambda: all(lead.status == "reached" for lead in leads_of(app, tenant_id).values()),
            timeout=60,
            what="every lead reached",
        )
    finally:
        second.stop()

    attempts = attempts_of(app, tenant_id)
    engine_lost = [a for a in attempts if a.detail == "engine_lost"]
    assert len(engine_lost) == lost  # every attempt of the dead host closed, none forgotten
    assert all(a.outcome == "technical_error" and a.end_at for a in engine_lost)
    assert len({a.engine for a in attempts}) == 2  # the dead host's, and its successor's
    never_twice_at_once(attempts)
    assert all(a.outcome is not None for a in attempts)


def test_a_pbx_gone_for_a_while_loses_no_lead(app, database_url, pbx, private_redis):
    """The engine stops dialing after a few calls get no response, checks the PBX with
    REGISTER, and dials again when it answers; no lead is lost or dialed twice at once."""
    peer = pbx("pbx.xml", calls=200, timeout=120, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, wrap_up_timeout_seconds=1, retry_unavailable_minutes=0
    )
    phones = [f"+1555000{n:02d}10" for n in range(10)]
    go_on_line(app, tenant_id, *operators.values())
    short = Timers(t1=0.05, t2=0.2, t4=0.2)
    with HostThread(database_url, private_redis.url, timers=short, register_backoff=0.5):
        wait_until(lambda: engine_state(app, tenant_id).get("registration") == "registered")
        peer.stop()  # the PBX is gone
        add_leads(app, tenant_id, phones)
        noticed = ("pbx_silent", "registration_failed")
        wait_until(
            lambda: engine_state(app, tenant_id).get("reason") in noticed,
            timeout=30,
            what="the engine notices",
        )
        silent = len(attempts_of(app, tenant_id))
        back = pbx("pbx.xml", calls=200, timeout=120, fill={"ring_ms": 0}, port=peer.port)
        wait_until(
            lambda: all(lead.status == "reached" for lead in leads_of(app, tenant_id).values()),
            timeout=60,
            what="every lead reached once the PBX is back",
        )
        back.stop()
    attempts = attempts_of(app, tenant_id)
    unanswered = [a for a in attempts if a.outcome != "answered"]
    assert silent <= 3 + 2 and len(unanswered) == silent  # it stopped after a few
    assert {(a.outcome, a.detail) for a in unanswered} <= {("unavailable", "no_response")}
    never_twice_at_once(attempts)


def test_the_keepalive_notices_a_silent_pbx_before_a_lead_is_dialed(
    app, database_url, pbx, private_redis
):
    """OPTIONS every 0.3 s: the PBX going silent pauses dialing before any lead is burned as
    unavailable, the SIP page's state says how the PBX answered, and dialing goes on when
    the PBX is back."""
    peer = pbx("pbx.xml", calls=500, timeout=120, fill={"ring_ms": 0})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, wrap_up_timeout_seconds=1)
    go_on_line(app, tenant_id, *operators.values())
    short = Timers(t1=0.05, t2=0.2, t4=0.2)
    with HostThread(
        database_url,
        private_redis.url,
        timers=short,
        register_backoff=0.5,
        keepalive_interval=0.3,
    ):

        def account() -> dict:
            return next(iter(engine_state(app, tenant_id).get("accounts", {}).values()), {})

        wait_until(lambda: account().get("status") == 200, what="the PBX answers OPTIONS")
        assert account()["registration"] == "registered" and account()["answer_ms"] >= 0
        peer.stop()  # the PBX is gone, and no lead is due
        wait_until(
            lambda: engine_state(app, tenant_id).get("reason") == "pbx_silent",
            timeout=30,
            what="the keep-alive notices",
        )
        assert account()["silent_since"] is not None
        phones = [f"+1555000{n:02d}10" for n in range(5)]
        add_leads(app, tenant_id, phones)
        time.sleep(1.0)  # ticks that would have dialed them
        assert attempts_of(app, tenant_id) == []  # nothing burned while the PBX is silent
        back = pbx("pbx.xml", calls=500, timeout=120, fill={"ring_ms": 0}, port=peer.port)
        wait_until(
            lambda: all(lead.status == "reached" for lead in leads_of(app, tenant_id).values()),
            timeout=60,
            what="every lead reached once the PBX is back",
        )
        back.stop()
    attempts = attempts_of(app, tenant_id)
    assert len(attempts) == len(phones)
    assert {a.outcome for a in attempts} == {"answered"}
