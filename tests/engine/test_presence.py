"""Operators' presence: the Lua scripts against the real Redis."""

from __future__ import annotations

import pytest
import redis

from engine.bus import TenantKeys
from engine.presence import BUSY, FREE, TRANSFERRING, Presence, decode_all, fenced
from tests.conftest import REDIS_PREFIX, REDIS_URL


def presence(heartbeat_ttl: float = 45.0) -> Presence:
    return Presence(redis.Redis.from_url(REDIS_URL), TenantKeys(REDIS_PREFIX, 7), heartbeat_ttl)


def states(p: Presence) -> dict:
    return {op: s.state for op, s in decode_all(p.states()).items()}


def test_the_longest_free_operator_is_taken_unless_the_preferred_one_is_free():
    p = presence()
    p.go_on_line(1, now=100.0)
    p.go_on_line(2, now=101.0)
    p.go_on_line(3, now=102.0)
    assert p.take(lead_id=50, now=103.0) == b"1"  # free the longest
    assert p.take(lead_id=51, preferred=3, now=103.0) == b"3"  # served this lead before
    assert p.take(lead_id=52, preferred=1, now=103.0) == b"2"  # 1 is not free: anyone
    assert p.take(lead_id=53, now=103.0) is None
    assert states(p) == {1: TRANSFERRING, 2: TRANSFERRING, 3: TRANSFERRING}
    assert decode_all(p.states())[3].lead_id == 51


def test_a_customer_of_a_campaign_gets_one_of_its_operators_the_fewest_campaigns_first():
    """`among`: the operators of the customer's campaign, ranked by how many campaigns they
    work; the lowest rank first, the longest free among equals; the preferred operator only
    if they work the campaign. Ids that are prefixes of others (1, 12) are not confused."""
    p = presence()
    for operator, at in ((1, 100.0), (12, 101.0), (3, 102.0), (4, 103.0)):
        p.go_on_line(operator, now=at)
    assert p.free_operators() == [b"1", b"12", b"3", b"4"]
    assert p.take(lead_id=50, among={12: 2, 3: 1, 4: 1}, now=104.0) == b"3"  # rank 1, longer
    assert p.take(lead_id=51, preferred=1, among={12: 2, 4: 1}, now=104.0) == b"4"  # 1: not
    assert p.take(lead_id=52, among={3: 1}, now=104.0) is None  # 3 is taken: nobody else
    assert p.take(lead_id=53, among={}, now=104.0) is None  # a campaign nobody works
    assert p.take(lead_id=54, among={12: 2}, now=104.0) == b"12"
    assert states(p) == {1: FREE, 12: TRANSFERRING, 3: TRANSFERRING, 4: TRANSFERRING}


def test_a_transfer_makes_the_operator_busy_and_finishing_frees_them():
    p = presence()
    p.go_on_line(1, now=100.0)
    p.take(lead_id=9, now=101.0)
    assert p.transferred(1, True, failure_limit=3, now=102.0) == b"busy"
    assert p.free_count() == 0 and states(p) == {1: BUSY}
    p.finish(1, now=110.0)
    assert states(p) == {1: FREE} and p.free_count() == 1


def test_failed_transfers_in_a_row_take_the_operator_off_line():
    p = presence()
    p.go_on_line(1, now=100.0)
    for _ in range(2):
        p.take(lead_id=9, now=101.0)
        assert p.transferred(1, False, failure_limit=3, now=102.0) == b"free"
    p.take(lead_id=9, now=103.0)
    assert p.transferred(1, True, failure_limit=3, now=104.0) == b"busy"  # the count resets
    p.finish(1, now=105.0)
    for expected in (b"free", b"free", b"off_line"):
        p.take(lead_id=9, now=106.0)
        assert p.transferred(1, False, failure_limit=3, now=107.0) == expected
    assert states(p) == {}


def test_a_quiet_console_leaves_no_ghost_and_busy_operators_are_freed_after_wrap_up():
    p = presence(heartbeat_ttl=30.0)
    p.go_on_line(1, now=100.0)
    p.go_on_line(2, now=100.0)
    p.take(lead_id=9, preferred=2, now=100.0)
    p.transferred(2, True, failure_limit=0, now=100.0)
    p.heartbeat(2, now=125.0)
    # Operator 1's tab closed at 100: not taken at 131, and off line.
    assert p.take(lead_id=10, now=131.0) is None
    assert states(p) == {2: BUSY}
    p.heartbeat(2, now=150.0)
    assert p.sweep(wrap_up_timeout=60.0, now=155.0) == []
    assert p.sweep(wrap_up_timeout=60.0, now=161.0) == [b"2", b"free"]
    assert states(p) == {2: FREE}


def test_each_operator_is_freed_after_the_wrap_up_timeout_of_their_customers_campaign():
    """Operator 1 took a customer of a campaign with 30 s of wrap-up, operator 2 one of a
    campaign that waits for the console (0); operator 3's transfer named none: the sweep's."""
    p = presence(heartbeat_ttl=0)
    for operator, timeout in ((1, 30.0), (2, 0.0), (3, None)):
        p.go_on_line(operator, now=100.0)
        p.take(lead_id=operator, preferred=operator, now=100.0)
        p.transferred(operator, True, failure_limit=0, wrap_up_timeout=timeout, now=100.0)
    assert p.sweep(wrap_up_timeout=60.0, now=129.0) == []
    assert p.sweep(wrap_up_timeout=60.0, now=131.0) == [b"1", b"free"]
    assert p.sweep(wrap_up_timeout=60.0, now=161.0) == [b"3", b"free"]
    assert p.sweep(wrap_up_timeout=60.0, now=10_000.0) == []
    assert states(p) == {1: FREE, 2: BUSY, 3: FREE}


def test_going_on_line_wakes_the_engine_and_again_keeps_the_state():
    p = presence()
    listener = p.client.pubsub()
    listener.subscribe(p.keys.wake)
    listener.get_message(timeout=1)  # the subscription itself
    p.go_on_line(1, now=100.0)
    message = listener.get_message(timeout=1)
    assert message and b'"type":"presence"' in message["data"]
    p.take(lead_id=9, now=101.0)
    p.go_on_line(1, now=102.0)  # the console reconnects: the operator stays transferring
    assert states(p) == {1: TRANSFERRING}
    listener.close()


def test_an_engine_older_than_the_newest_can_no_longer_take_or_free_operators():
    """The engine's scripts are fenced by its token: once a newer engine of the tenant has
    written, the older one's take, transferred, release and sweep write nothing."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = TenantKeys(REDIS_PREFIX, 7)
    console = Presence(client, keys)  # the portal's: not fenced
    old, new = Presence(client, keys, epoch=4), Presence(client, keys, epoch=5)
    console.go_on_line(1, now=100.0)
    console.go_on_line(2, now=100.0)
    assert old.take(lead_id=8, now=101.0) == b"1"  # nobody newer yet
    new.fence()
    for refused in (
        lambda: old.take(lead_id=9, now=102.0),
        lambda: old.transferred(1, True, failure_limit=3, now=102.0),
        lambda: old.release(1, now=102.0),
        lambda: old.sweep(wrap_up_timeout=1.0, now=500.0),
    ):
        with pytest.raises(redis.ResponseError) as error:
            refused()
        assert fenced(error.value)
    assert states(console) == {1: TRANSFERRING, 2: FREE}  # nothing changed
    assert new.release(1, now=103.0) == 1  # the newest engine frees what the old one took
    console.go_off_line(2, now=104.0)  # the console's side is never fenced
    assert states(console) == {1: FREE}


def test_after_redis_restarted_the_first_engine_to_write_sets_the_token_and_the_newest_wins():
    client = redis.Redis.from_url(REDIS_URL)
    keys = TenantKeys(REDIS_PREFIX, 7)
    Presence(client, keys).go_on_line(1, now=100.0)
    old, new = Presence(client, keys, epoch=4), Presence(client, keys, epoch=5)
    assert old.take(lead_id=8, now=101.0) == b"1"  # no token in Redis: taken, and set to 4
    assert client.get(keys.epoch) == b"4"
    assert new.release(1, now=102.0) == 1  # 5 is newer: it writes, and the token is 5
    assert client.get(keys.epoch) == b"5"
    with pytest.raises(redis.ResponseError):
        old.take(lead_id=9, now=103.0)


def test_a_ghost_taken_off_line_gets_no_more_calls_and_its_heartbeats_do_not_bring_it_back():
    """A supervisor takes operator 1 off line while their forgotten console still beats:
    the engine takes only operator 2, the console hears why, and only the operator's own
    going on line clears it."""
    p = presence()
    listener = p.client.pubsub()
    listener.subscribe(p.keys.wake)
    listener.get_message(timeout=1)
    p.go_on_line(1, now=100.0)  # free the longest: the engine would take them first
    p.go_on_line(2, now=101.0)
    listener.get_message(timeout=1)
    listener.get_message(timeout=1)
    was = p.take_off_line(1, "supervisor", now=102.0)
    assert was is not None and was.startswith(b"free|")
    message = listener.get_message(timeout=1)
    assert message and b'"type":"presence"' in message["data"]
    assert p.heartbeat(1, now=103.0) == 0  # the ghost's console beats in vain
    assert p.client.hget(p.keys.off_line_why, 1) == b"supervisor"
    [(_id, fields)] = p.client.xrange(p.keys.pops(1))
    assert b'"type":"operator_off_line"' in fields[b"event"]
    assert b'"reason":"supervisor"' in fields[b"event"]
    assert p.take(lead_id=50, now=104.0) == b"2"
    assert p.take(lead_id=51, now=104.0) is None
    assert p.take(lead_id=52, preferred=1, among={1: 1}, now=104.0) is None
    assert states(p) == {2: TRANSFERRING}
    assert p.take_off_line(1, now=105.0) is None  # already off line: nothing to undo
    p.go_on_line(1, now=106.0)  # the operator came back and chose to work
    assert p.client.hget(p.keys.off_line_why, 1) is None
    assert p.take(lead_id=53, now=107.0) == b"1"
    listener.close()
