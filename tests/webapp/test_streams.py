"""webapp/streams.py against the real Redis: the leases that cap a person's and a tenant's
open event streams (and end by themselves when a process dies), and the hub, one Redis
reader per process that hands each stream its events."""

from __future__ import annotations

import time

import pytest
import redis

from tests.conftest import REDIS_PREFIX, REDIS_URL
from webapp import streams


@pytest.fixture
def connection():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def keys(user_id: int, tenant_id: int = 1) -> tuple[str, str]:
    return streams.lease_keys(REDIS_PREFIX, tenant_id, user_id)


def test_a_person_holds_at_most_their_cap_and_a_released_lease_frees_a_place(connection):
    held = [streams.take_lease(connection, keys(7), 3, 100) for _ in range(3)]
    assert all(isinstance(lease, streams.Lease) for lease in held)
    assert streams.take_lease(connection, keys(7), 3, 100) == "user"
    assert isinstance(streams.take_lease(connection, keys(8), 3, 100), streams.Lease)  # another
    held[0].release()
    assert isinstance(streams.take_lease(connection, keys(7), 3, 100), streams.Lease)


def test_a_tenant_holds_at_most_its_cap_whoever_opens(connection):
    assert isinstance(streams.take_lease(connection, keys(1), 3, 2), streams.Lease)
    assert isinstance(streams.take_lease(connection, keys(2), 3, 2), streams.Lease)
    assert streams.take_lease(connection, keys(3), 3, 2) == "tenant"
    assert isinstance(streams.take_lease(connection, keys(3, tenant_id=2), 3, 2), streams.Lease)


def test_the_leases_of_a_process_that_died_end_by_themselves(connection):
    start = time.time()
    for _ in range(3):  # taken, then the process is killed: never renewed nor released
        streams.take_lease(connection, keys(7), 3, 100, now=start)
    assert streams.take_lease(connection, keys(7), 3, 100, now=start + 1) == "user"
    later = start + streams.LEASE_SECONDS + 1
    assert isinstance(streams.take_lease(connection, keys(7), 3, 100, now=later), streams.Lease)
    assert connection.ttl(keys(7)[0]) <= streams.LEASE_SECONDS  # the sets expire too


def test_a_renewed_lease_keeps_counting(connection):
    start = time.time()
    alive = streams.take_lease(connection, keys(7), 2, 100, now=start)
    streams.take_lease(connection, keys(7), 2, 100, now=start)  # its process dies
    alive.renew(now=start + 50)
    later = start + streams.LEASE_SECONDS + 1
    assert isinstance(streams.take_lease(connection, keys(7), 2, 100, now=later), streams.Lease)
    assert streams.take_lease(connection, keys(7), 2, 100, now=later) == "user"


def readers(connection, name: str) -> int:
    return sum(client["name"] == name for client in connection.client_list())


def test_one_reader_hands_every_stream_its_own_events(connection):
    hub = streams.Hub(REDIS_URL, limit=50, name=f"{REDIS_PREFIX}hub-test")
    first, second = f"{REDIS_PREFIX}op:1:pops", f"{REDIS_PREFIX}op:2:pops"
    old = connection.xadd(first, {"event": b"before"}).decode()
    ones = [hub.subscribe(first, "0-0") for _ in range(10)]  # from the start: catches up
    twos = [hub.subscribe(second, "0-0") for _ in range(10)]
    new_one = connection.xadd(first, {"event": b"one"}).decode()
    new_two = connection.xadd(second, {"event": b"two"}).decode()
    for subscription in ones:
        got = []
        while len(got) < 2:
            got += subscription.wait(5)
        assert [event_id for event_id, _fields in got] == [old, new_one]
    for subscription in twos:
        got = subscription.wait(5) or subscription.wait(5)
        assert got == [(new_two, {b"event": b"two"})]
    assert readers(connection, hub.name) == 1  # 20 streams, one Redis connection waiting
    late = hub.subscribe(first, new_one)  # a reconnect with Last-Event-ID: nothing old again
    newest = connection.xadd(first, {"event": b"three"}).decode()
    assert [event_id for event_id, _ in late.wait(5) or late.wait(5)] == [newest]
    assert hub.open_streams == 21
    for subscription in [*ones, *twos, late]:
        hub.unsubscribe(subscription)
    assert hub.open_streams == 0


def test_a_full_process_opens_no_more_streams():
    hub = streams.Hub(REDIS_URL, limit=2, name=f"{REDIS_PREFIX}hub-full")
    held = [hub.subscribe(f"{REDIS_PREFIX}k", "0-0") for _ in range(2)]
    assert hub.subscribe(f"{REDIS_PREFIX}k", "0-0") is None
    hub.unsubscribe(held[0])
    assert hub.subscribe(f"{REDIS_PREFIX}k", "0-0") is not None
