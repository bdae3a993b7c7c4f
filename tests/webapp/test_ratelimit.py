"""The sign-in throttle (webapp/ratelimit.py) in Redis and in memory: attempts counted
before the check, atomically, with back-off per email-and-client and per client address.
Time is the throttle's clock, moved by hand: no test sleeps."""

import threading
import uuid

import pytest

from tests.conftest import REDIS_PREFIX, REDIS_URL
from webapp.ratelimit import FIRST_PAUSE, LoginThrottle, _MemoryCounters, _RedisCounters, client_key

WINDOW = 900


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "memory"])
def counters(request):
    return _RedisCounters(REDIS_URL) if request.param == "redis" else _MemoryCounters()


@pytest.fixture
def clock():
    return Clock()


def _throttle(counters, clock, per_pair=3, per_ip=10):
    return LoginThrottle(counters, per_pair, per_ip, WINDOW, prefix=REDIS_PREFIX, clock=clock)


def _email() -> str:
    return f"{uuid.uuid4().hex}@x.example"


def test_the_limit_counts_attempts_before_any_check(counters, clock):
    throttle = _throttle(counters, clock)
    email = _email()
    assert [throttle.attempt(email, "192.0.2.1") for _ in range(5)] == [0, 0, 0, 60, 60]
    assert throttle.wait(email, "192.0.2.1") == FIRST_PAUSE


def test_failing_on_an_email_from_elsewhere_never_keeps_its_owner_out(counters, clock):
    throttle = _throttle(counters, clock)
    victim = _email()
    for _ in range(20):
        throttle.attempt(victim, "198.51.100.66")
    assert throttle.wait(victim, "198.51.100.66") > 0
    assert throttle.attempt(victim, "192.0.2.1") == 0  # the owner, at the office
    throttle.succeeded(victim, "192.0.2.1")


def test_the_client_address_has_a_looser_limit_for_all_emails(counters, clock):
    throttle = _throttle(counters, clock, per_pair=3, per_ip=5)
    results = [throttle.attempt(_email(), "192.0.2.2") for _ in range(6)]
    assert results[:5] == [0] * 5 and results[5] == FIRST_PAUSE
    assert throttle.wait(_email(), "192.0.2.2") == FIRST_PAUSE
    assert throttle.wait(_email(), "192.0.2.3") == 0


def test_back_off_doubles_the_pause_up_to_the_window(counters, clock):
    throttle = _throttle(counters, clock, per_pair=2)
    email, ip = _email(), "192.0.2.4"
    pauses = []
    for _ in range(2 + 6):
        assert throttle.attempt(email, ip) == 0
        pauses.append(throttle.wait(email, ip))
        clock.now += pauses[-1]  # the client waits exactly as long as it is told
    assert pauses == [0, 60, 120, 240, 480, 900, 900, 900]
    clock.now -= 1  # a second before the last pause ends: refused, and not counted
    assert throttle.attempt(email, ip) == 1
    clock.now += 1
    assert throttle.attempt(email, ip) == 0


def test_counts_are_forgotten_a_window_after_the_last_pause(clock):
    """In memory; Redis forgets by the keys' expiry (the next test)."""
    throttle = _throttle(_MemoryCounters(), clock, per_pair=2)
    email, ip = _email(), "192.0.2.5"
    throttle.attempt(email, ip)
    throttle.attempt(email, ip)
    clock.now += FIRST_PAUSE + WINDOW - 1
    assert throttle.attempt(email, ip) == 0  # remembered: this one starts a longer pause
    assert throttle.wait(email, ip) == 2 * FIRST_PAUSE
    clock.now += 2 * FIRST_PAUSE + WINDOW
    assert [throttle.attempt(email, ip) for _ in range(3)] == [0, 0, FIRST_PAUSE]


def test_redis_keys_expire_after_the_window_and_the_pause():
    throttle = LoginThrottle(_RedisCounters(REDIS_URL), 1, 10, WINDOW, prefix=REDIS_PREFIX)
    email, ip = _email(), "192.0.2.6"
    throttle.attempt(email, ip)
    redis = throttle.counters._redis
    assert WINDOW < redis.ttl(throttle._pair_key(email, ip)) <= WINDOW + FIRST_PAUSE
    assert 0 < redis.ttl(throttle._ip_key(ip)) <= WINDOW


def test_a_right_password_forgets_the_pair_and_gives_back_the_address(counters, clock):
    throttle = _throttle(counters, clock, per_pair=3, per_ip=3)
    email, ip = _email(), "192.0.2.7"
    assert throttle.attempt(email, ip) == 0
    assert throttle.attempt(email, ip) == 0
    assert throttle.attempt(email, ip) == 0  # the third reaches both limits...
    throttle.succeeded(email, ip)  # ...and was right
    assert throttle.wait(email, ip) == 0
    colleague = _email()  # behind the same office address
    assert throttle.attempt(colleague, ip) == 0
    # The address holds the two attempts before the right one, and the colleague's.
    assert throttle.attempt(colleague, ip) == FIRST_PAUSE


def test_single_sign_on_counts_the_address_first_and_the_email_later(counters, clock):
    throttle = _throttle(counters, clock, per_pair=2, per_ip=10)
    email, ip = _email(), "192.0.2.8"
    for _ in range(2):
        assert throttle.attempt(None, ip) == 0
        throttle.failed(email, ip)
    assert throttle.wait(email, ip) == FIRST_PAUSE
    assert throttle.wait(None, ip) == 0


def test_parallel_attempts_pass_at_most_the_limit(counters, clock):
    throttle = _throttle(counters, clock, per_pair=5, per_ip=100)
    email, start = _email(), threading.Barrier(40)
    results = []

    def attempt():
        start.wait()
        results.append(throttle.attempt(email, "192.0.2.9"))

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(0) == 5 and len(results) == 40


def test_ipv6_clients_count_by_their_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("unknown") == "unknown"


def test_redis_never_holds_the_email_address():
    throttle = LoginThrottle(_MemoryCounters(), 1, 1, 1)
    key = throttle._pair_key("anna@x.example", "192.0.2.1")
    assert "anna" not in key and key.startswith("ac:login:pair:")
