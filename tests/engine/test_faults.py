"""Faults that real machines have, and what the engine guarantees under them, judged where it
matters: at the PBX (the demo PBX's journal of every call: who was called, when, how many at
once) and then in the database and in presence.

- an engine host paused (SIGSTOP) past its lease while its calls ring, another host taking
  the tenant over, then the paused one resumed (SIGCONT);
- the engine's database connection stalled longer than the lease, with dialing switched off
  during the stall;
- dialing switched off in the middle of a burst of calls;
- an engine host killed (kill -9) with calls ringing at the PBX;

and after each: no number in two calls at once, no more calls at once than the tenant's
ceiling, no INVITE more than a second after dialing off, every attempt with an outcome, every
lead finished or due, no operator left `transferring`.

The engine hosts are real processes (RQ workers running `python -m webapp.jobs engines`), or
an engine host in a thread of the test where only the database connection is at fault. Only
PostgreSQL: the faults are of a database server.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from engine.presence import TRANSFERRING, decode_all
from engine.sim.pbx import Behaviour
from tests.conftest import REDIS_URL
from tests.engine.dialing import (
    HostThread,
    PbxThread,
    add_leads,
    attempts_of,
    calls_at_pbx,
    demo_pbx_tenant,
    engine_state,
    go_on_line,
    leads_of,
    most_at_once,
    numbers_in_two_calls_at_once,
    set_tenant,
    wait_until,
)
from tests.engine.processes import StallingProxy, Worker, host_pids
from webapp import bus

#: Customers by the last digit of their number: 0 answers, 2 busy, 3 no answer, 4 unreachable.
#: Those who do not answer stop ringing after `ring_limit`, as a carrier does, so that the calls
#: of a killed engine end at the PBX too.
CUSTOMERS = Behaviour(
    ring_min=0.5, ring_max=1.5, transfer_delay=0.3, by_last_digit=True, ring_limit=6.0
)
CEILING = 4


@pytest.fixture
def database_url(postgres_url) -> str:
    return postgres_url


def tenant_at(app, pbx, **settings) -> tuple[int, dict]:
    values = dict(
        ring_timeout_seconds=3,
        pacing_mode="multiplier",
        call_multiplier=2.0,
        max_calls_at_once=CEILING,
        wrap_up_timeout_seconds=1,
        max_attempts=2,
        retry_no_answer_minutes=0,
        retry_busy_minutes=0,
        retry_unavailable_minutes=0,
        retry_technical_error_minutes=0,
        # The demo PBX answers a REFER at once; a short wait keeps a lost engine's calls
        # (which its successor waits out, `lost_call_bound`) short too.
        transfer_wait_seconds=10,
    )
    values.update(settings)
    return demo_pbx_tenant(app, "Acme", pbx, extensions=("101", "102", "103"), **values)


def phones(count: int, digits: str = "0033") -> list[str]:
    return [f"+1555{n:06d}{digits[n % len(digits)]}" for n in range(count)]


def dialing_off(app, tenant_id: int) -> float:
    """The admin unticks "Automatic dialing is on" and saves: when the save committed."""
    set_tenant(app, tenant_id, dialing_enabled=False)
    return time.time()


def operators_transferring(app, tenant_id: int) -> list[int]:
    with app.app_context():
        states = decode_all(bus.presence(tenant_id).states())
    return [op for op, state in states.items() if state.state == TRANSFERRING]


def settled(app, tenant_id: int) -> bool:
    """Every attempt has its outcome and no lead is being dialed."""
    attempts = attempts_of(app, tenant_id)
    return (
        bool(attempts)
        and all(a.outcome is not None for a in attempts)
        and not any(lead.status == "dialing" for lead in leads_of(app, tenant_id).values())
    )


def finished(app, tenant_id: int) -> bool:
    """Every lead reached or out of attempts, every attempt with its outcome."""
    leads = leads_of(app, tenant_id).values()
    return settled(app, tenant_id) and all(
        lead.status in ("reached", "exhausted") for lead in leads
    )


def assert_database_and_presence_clean(app, tenant_id: int) -> None:
    attempts = attempts_of(app, tenant_id)
    assert all(a.outcome is not None and a.end_at is not None for a in attempts)
    leads = leads_of(app, tenant_id).values()
    assert {lead.status for lead in leads} <= {"new", "retry", "reached", "exhausted"}
    assert operators_transferring(app, tenant_id) == []


def assert_pbx_saw_no_harm(calls) -> None:
    assert numbers_in_two_calls_at_once(calls) == []
    assert most_at_once(calls) <= CEILING
    assert all(call.end is not None for call in calls), [c for c in calls if c.end is None]


def test_a_host_paused_past_its_lease_stops_dialing_and_ends_its_calls_when_it_resumes(
    app, database_url, tmp_path
):
    with PbxThread(CUSTOMERS) as pbx:
        tenant_id, operators = tenant_at(app, pbx)
        add_leads(app, tenant_id, phones(16))
        go_on_line(app, tenant_id, *operators.values())
        workers = [Worker(database_url, REDIS_URL, tmp_path) for _ in range(2)]
        try:
            workers[0].enqueue_hosts()  # two hosts: one runs the tenant, one spare
            wait_until(lambda: len(host_pids(REDIS_URL)) == 2, what="two engine hosts")
            wait_until(lambda: ringing(pbx) >= 2, what="calls ringing")
            paused = holder_pid(app, tenant_id)
            first_engine = engine_state(app, tenant_id)["engine"]
            os.kill(paused, signal.SIGSTOP)  # past its lease (5 s): the spare takes over
            stopped_at = time.time()
            wait_until(
                lambda: engine_state(app, tenant_id).get("engine") != first_engine,
                timeout=20,
                what="the spare host takes the tenant over",
            )
            time.sleep(max(0.0, stopped_at + 8.0 - time.time()))
            os.kill(paused, signal.SIGCONT)
            resumed_at = time.time()
            wait_until(
                lambda: finished(app, tenant_id) and all_ended(pbx),
                timeout=90,
                what="every lead finished",
            )
            second_engine = engine_state(app, tenant_id)["engine"]
        finally:
            for worker in workers:
                worker.stop()
        calls = calls_at_pbx(pbx.journal)
    stale = {call.source for call in calls if call.start < stopped_at}
    assert len(stale) == 1  # one engine dialed before the pause
    after = [call for call in calls if call.source in stale and call.start > resumed_at]
    assert after == []  # the paused engine placed no call once resumed
    for call in calls:
        if call.source in stale:  # its calls ended at once, as it saw it lost the tenant
            assert call.end < resumed_at + 3.0, call
    assert any(call.source not in stale for call in calls)  # the spare dialed meanwhile
    assert_pbx_saw_no_harm(calls)
    assert second_engine != first_engine  # the stale one's "stopped" did not overwrite it
    attempts = attempts_of(app, tenant_id)
    assert len({a.engine for a in attempts}) == 2
    assert_database_and_presence_clean(app, tenant_id)


def test_a_database_stall_longer_than_the_lease_and_dialing_off_during_it(app, database_url):
    proxy = StallingProxy()
    try:
        with PbxThread(CUSTOMERS) as pbx:
            tenant_id, operators = tenant_at(app, pbx)
            add_leads(app, tenant_id, phones(60))
            go_on_line(app, tenant_id, *operators.values())
            with HostThread(proxy.url(database_url)):
                wait_until(lambda: ringing(pbx) >= 2, what="calls ringing")
                proxy.stall()  # the engine's database hangs mid-query, locks held
                off = {}

                def save() -> None:
                    off["at"] = dialing_off(app, tenant_id)

                saving = threading.Thread(target=save)
                time.sleep(1.0)
                saving.start()  # the admin saves "dialing off" during the stall
                time.sleep(7.0)  # 8 s in all: longer than the 5 s lease
                proxy.resume()
                saving.join(30)
                wait_until(
                    lambda: engine_state(app, tenant_id).get("state") == "stopped",
                    timeout=30,
                    what="the engine stops",
                )
                wait_until(lambda: all_ended(pbx), timeout=15, what="every call ended")
            calls = calls_at_pbx(pbx.journal)
    finally:
        proxy.close()
    assert [call for call in calls if call.start > off["at"] + 1.0] == []
    assert_pbx_saw_no_harm(calls)
    wait_until(lambda: settled(app, tenant_id), what="every attempt written")
    assert_database_and_presence_clean(app, tenant_id)


def test_dialing_off_mid_burst_stops_new_calls_and_ends_those_ringing_within_a_second(
    app, database_url
):
    with PbxThread(CUSTOMERS) as pbx:
        tenant_id, operators = tenant_at(app, pbx, ring_timeout_seconds=30)
        add_leads(app, tenant_id, phones(40, digits="3"))  # nobody answers: all ring
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(lambda: ringing(pbx) >= 3, what="a burst of calls ringing")
            off_at = dialing_off(app, tenant_id)
            wait_until(
                lambda: engine_state(app, tenant_id).get("state") == "stopped",
                what="the engine stops",
            )
            wait_until(lambda: all_ended(pbx), timeout=10, what="every call ended")
        calls = calls_at_pbx(pbx.journal)
    assert [call for call in calls if call.start > off_at + 1.0] == []
    ringing_then = [call for call in calls if call.start < off_at]
    assert ringing_then and all(call.how == "cancel" for call in ringing_then)
    assert all(call.end < off_at + 1.5 for call in ringing_then), ringing_then
    assert_pbx_saw_no_harm(calls)
    stopped = [a for a in attempts_of(app, tenant_id) if a.detail == "engine_stopped"]
    assert len(stopped) == len(ringing_then)
    assert_database_and_presence_clean(app, tenant_id)


def test_a_host_killed_with_calls_at_the_pbx(app, database_url, tmp_path):
    """The successor closes the dead engine's attempts, counts its calls in flight while they
    could still be going, and dials none of their numbers while the PBX still has them."""
    with PbxThread(CUSTOMERS) as pbx:
        tenant_id, operators = tenant_at(app, pbx)
        add_leads(app, tenant_id, phones(16))
        go_on_line(app, tenant_id, *operators.values())
        first = Worker(database_url, REDIS_URL, tmp_path)
        second = None
        try:
            first.enqueue_hosts()
            wait_until(lambda: ringing(pbx) >= 3, what="calls ringing")
            first.kill(REDIS_URL)  # kill -9, in the middle of ringing calls
            killed_at = time.time()
            second = Worker(database_url, REDIS_URL, tmp_path)
            second.enqueue_hosts()
            wait_until(
                lambda: finished(app, tenant_id) and all_ended(pbx),
                timeout=90,
                what="every lead finished",
            )
        finally:
            first.stop()
            if second is not None:
                second.stop()
        calls = calls_at_pbx(pbx.journal)
    assert any(call.start > killed_at for call in calls)  # the successor dialed
    assert_pbx_saw_no_harm(calls)
    lost = [a for a in attempts_of(app, tenant_id) if a.detail == "engine_lost"]
    assert lost
    assert_database_and_presence_clean(app, tenant_id)


# --- helpers ---------------------------------------------------------------------------------


def ringing(pbx) -> int:
    return sum(call.end is None for call in calls_at_pbx(pbx.journal))


def all_ended(pbx) -> bool:
    return ringing(pbx) == 0


def holder_pid(app, tenant_id: int) -> int:
    """The process of the engine host that holds the tenant's lease."""
    with app.app_context():
        holder = bus.client().get(bus.keys(tenant_id).lease)
    return int(holder.decode().split(":")[1])
