"""Pacing decisions, the same from the Cython pacer and its pure twin."""

import pytest

from engine import _pacer, pacer


@pytest.fixture(params=[_pacer, pacer], ids=["c-pacer", "py-pacer"])
def impl(request):
    return request.param


@pytest.mark.parametrize(
    ("mode", "free", "multiplier", "target"),
    [
        ("progressive", 5, 1.7, 5),
        ("multiplier", 5, 1.2, 6),  # the product's own example
        ("multiplier", 3, 1.2, 4),  # 3.6 rounds half up
        ("multiplier", 1, 1.2, 1),
        ("multiplier", 10, 1.0, 10),
        ("multiplier", 0, 2.0, 0),
        ("progressive", -1, 1.0, 0),
    ],
)
def test_target_in_flight(impl, mode, free, multiplier, target):
    assert impl.target_in_flight(mode, free, multiplier) == target


def test_unknown_mode_is_refused(impl):
    with pytest.raises(ValueError, match="unknown pacing mode 'turbo'"):
        impl.Pacer("turbo")


def test_calls_in_flight_count_against_the_target(impl):
    p = impl.Pacer("multiplier", multiplier=1.5, calls_per_second=100)
    assert p.calls_to_start(free_operators=4, in_flight=0, now=0.0) == 6
    assert p.calls_to_start(free_operators=4, in_flight=6, now=0.1) == 0
    assert p.calls_to_start(free_operators=4, in_flight=4, now=0.2) == 2


def test_ceiling_on_concurrent_calls(impl):
    p = impl.Pacer("progressive", max_in_flight=3, calls_per_second=100)
    assert p.calls_to_start(10, 0, 0.0) == 3
    assert p.calls_to_start(10, 3, 1.0) == 0


def test_call_rate_is_a_token_bucket(impl):
    p = impl.Pacer("progressive", calls_per_second=2, now=0.0)
    assert p.calls_to_start(10, 0, 0.0) == 2  # a second's worth at once
    assert p.calls_to_start(10, 2, 0.2) == 0  # 0.4 tokens: not a whole call yet
    assert p.calls_to_start(10, 2, 0.5) == 1  # 1.0 token
    assert p.calls_to_start(10, 3, 10.0) == 2  # the bucket holds one second, no more


def test_twins_agree_on_a_stream_of_decisions():
    import random

    rng = random.Random(7)
    c = _pacer.Pacer("multiplier", multiplier=1.3, max_in_flight=40, calls_per_second=5)
    py = pacer.Pacer("multiplier", multiplier=1.3, max_in_flight=40, calls_per_second=5)
    now = in_flight = 0
    for _ in range(2000):
        now += rng.random() * 0.3
        free = rng.randint(0, 30)
        started = c.calls_to_start(free, in_flight, now)
        assert started == py.calls_to_start(free, in_flight, now)
        in_flight = max(0, in_flight + started - rng.randint(0, 3))
