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
    p = impl.Pacer("progressive", max_calls_at_once=3, calls_per_second=100)
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
    c = _pacer.Pacer("multiplier", multiplier=1.3, max_calls_at_once=40, calls_per_second=5)
    py = pacer.Pacer("multiplier", multiplier=1.3, max_calls_at_once=40, calls_per_second=5)
    now = in_flight = 0
    for _ in range(2000):
        now += rng.random() * 0.3
        free = rng.randint(0, 30)
        started = c.calls_to_start(free, in_flight, now)
        assert started == py.calls_to_start(free, in_flight, now)
        in_flight = max(0, in_flight + started - rng.randint(0, 3))


def learned(impl, mode="predictive", p=0.3, ring=8.0, handle=120.0, **kw):
    """A pacer that has seen 200 attempts and 50 handled leads of a steady tenant."""
    kw.setdefault("calls_per_second", 1000)
    kw.setdefault("max_calls_at_once", 1000)
    pacer_ = impl.Pacer(mode, **kw)
    for i in range(200):
        pacer_.ringing_ended(i % 10 < p * 10, ring if i % 10 < p * 10 else 25.0, 0.0)
    for _ in range(50):
        pacer_.handled(handle, 0.0)
    return pacer_


def test_new_modes_are_known(impl):
    for mode in ("adaptive", "predictive"):
        assert impl.Pacer(mode).mode == mode


def test_modes_are_taken_as_strings_or_members(impl):
    # The engine passes the database's plain string, or a `PacingMode` (a str subclass).
    for mode in (m for m in pacer.PacingMode if m in pacer.MODES):  # preview is not paced
        assert impl.Pacer(mode).mode == impl.Pacer(mode.value).mode == mode
    assert impl.target_in_flight(pacer.PacingMode.MULTIPLIER, 5, 1.2) == 6


def test_predictive_is_progressive_while_warming_up(impl):
    p = impl.Pacer("predictive", calls_per_second=100)
    assert p.calls_to_start(4, 0, 0.0, 10) == 4  # priors only: one call per free operator
    assert p.calls_to_start(4, 4, 0.1, 10) == 0


def test_predictive_dials_ahead_and_learns_the_answer_probability(impl):
    warm = learned(impl, p=0.3).calls_to_start(5, 0, 1.0, 10)
    assert warm > 5  # more calls than free operators: 30% answer
    rarely = learned(impl, p=0.1).calls_to_start(5, 0, 1.0, 10)
    assert rarely > warm  # a lower answer rate: more calls for the same operators
    assert learned(impl, p=0.3).answer_probability == pytest.approx(0.3, abs=0.05)


def test_predictive_counts_busy_operators_about_to_be_free(impl):
    assert learned(impl, handle=30.0).calls_to_start(0, 0, 1.0, 50) > 0
    assert learned(impl, handle=30.0).calls_to_start(0, 0, 1.0, 50) > learned(
        impl, handle=600.0
    ).calls_to_start(0, 0, 1.0, 50)
    assert learned(impl).calls_to_start(0, 0, 1.0, 0) == 0  # nobody on line: no call


def test_predictive_counts_operators_in_wrap_up_once_it_has_seen_wrap_ups(impl):
    p = learned(impl, handle=120.0)
    # No wrap-up seen yet (operators who never say the talk is over): the count changes
    # nothing, every busy operator is taken as one whose lead ends after a handle time.
    assert p.calls_to_start(0, 0, 1.0, 20, 10) == learned(impl).calls_to_start(0, 0, 1.0, 20)
    for _ in range(50):
        p.handled(120.0, 0.0, 15.0)  # 105 s of talk, 15 s of wrap-up
    assert p.wrap_ups == 50 and p.wrap_up_time == pytest.approx(15.0)
    assert p.handle_time == pytest.approx(120.0)
    in_wrap_up = [learned_with_wrap_ups(impl).calls_to_start(0, 0, 1.0, 40, n) for n in (0, 20, 40)]
    assert in_wrap_up[0] < in_wrap_up[1] < in_wrap_up[2]  # they are free again soon
    # All talking: no more than the old model's busy operators (who could be free at any
    # moment), since a talk is followed by a wrap-up.
    assert in_wrap_up[0] <= learned(impl).calls_to_start(0, 0, 1.0, 40)
    # More in wrap-up than are busy: counted as all the busy ones.
    assert learned_with_wrap_ups(impl).calls_to_start(0, 0, 1.0, 40, 99) == in_wrap_up[2]


def learned_with_wrap_ups(impl):
    p = learned(impl)
    for _ in range(50):
        p.handled(120.0, 0.0, 15.0)
    return p


def test_predictive_reacts_to_operators_joining_and_leaving(impl):
    p = learned(impl)
    first = p.calls_to_start(3, 0, 1.0, 3)
    assert first > 0
    assert p.calls_to_start(0, first, 1.1, 0) == 0  # they all left
    assert p.calls_to_start(10, first, 1.2, 10) > 0  # ten came on line


def test_predictive_calls_in_flight_count_until_they_are_old(impl):
    p = learned(impl)
    first = p.calls_to_start(5, 0, 1.0, 5)
    assert p.calls_to_start(5, first, 1.1, 5) == 0  # the same operators: nothing more
    assert p.calls_to_start(5, first, 100.0, 5) > 0  # unanswered long since: dial again


def test_predictive_margin_tightens_near_the_cap(impl):
    calm, near, over = learned(impl), learned(impl), learned(impl)
    near.set_window(1000, 27)
    over.set_window(1000, 40)
    assert over.abandon_rate() == pytest.approx(0.04)
    free, on_line = 8, 10
    counts = [x.calls_to_start(free, 0, 1.0, on_line) for x in (calm, near, over)]
    assert counts[0] > counts[1] > counts[2] >= free  # never below progressive


def test_predictive_closed_loop_dials_more_while_clean_and_less_after_abandons(impl):
    """The calibration rises with each answered call and falls with each abandoned one:
    it settles where the abandon rate is the aim (AIM x cap), within its bounds."""
    clean, abandoning = learned(impl), learned(impl)
    start = clean.loop
    assert start > 1.0  # 60 answered calls, none abandoned
    for _ in range(3):
        abandoning.abandoned(1.0)
    assert start > abandoning.loop
    # the abandon counts are the same for both over the window: only the loop differs
    clean.set_window(10_000, 100)
    abandoning.set_window(10_000, 100)
    assert clean.calls_to_start(5, 0, 1.0, 20) > abandoning.calls_to_start(5, 0, 1.0, 20)
    for _ in range(10_000):
        clean.ringing_ended(True, 8.0, 1.0)
    for _ in range(100):
        abandoning.abandoned(1.0)
    assert clean.loop == pacer.LOOP_MAX and abandoning.loop == pacer.LOOP_MIN
    # at the aim, the calibration stays where it is: one abandon per 1 / (aim x cap) answers
    steady = learned(impl)
    before = steady.loop
    answers = round(1 / (pacer.AIM * steady.cap))
    for _ in range(answers):
        steady.ringing_ended(True, 8.0, 1.0)
    steady.abandoned(1.0)
    assert steady.loop == pytest.approx(before, rel=0.01)


def test_predictive_respects_the_ceilings(impl):
    p = learned(impl, p=0.05, max_calls_at_once=12)
    assert p.calls_to_start(10, 0, 1.0, 10) == 12
    q = learned(impl, p=0.05, calls_per_second=3)
    assert q.calls_to_start(10, 0, 1.0, 10) == 3


def test_give_back_returns_tokens_and_forgets_the_calls(impl):
    p = learned(impl, calls_per_second=20)
    started = p.calls_to_start(5, 0, 1.0, 5)
    p.give_back(started, 1.0)  # no lead was due
    assert p.calls_to_start(5, 0, 1.0, 5) == started


def test_adaptive_raises_the_level_while_operators_wait_and_cuts_it_over_the_cap(impl):
    p = impl.Pacer("adaptive", calls_per_second=1000)
    assert p.level == 1.0
    for i in range(200):  # 20 s of ticks with 4 of 10 operators waiting
        p.calls_to_start(4, 100, i * 0.1, 10)
    assert p.level > 1.0
    assert p.calls_to_start(4, 0, 20.1, 10) == round(10 * p.level) - 6
    for _ in range(30):
        p.ringing_ended(True, 5.0, 21.0)
        p.abandoned(21.0)
    before = p.level
    for i in range(200):
        p.calls_to_start(4, 100, 21.0 + i * 0.1, 10)
    assert p.level < before
