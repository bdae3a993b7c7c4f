"""The division of free operators among running campaigns (engine/campaigns.py)."""

from collections import Counter

from engine.campaigns import HALF_LIFE, Load, Share, divide, proportions, reserve

EVERYONE = None


def test_an_operator_in_one_campaign_counts_toward_it():
    shares = [Share(1, {10: 1}), Share(2, {11: 1})]
    assert divide([10, 11], shares) == {1: [10], 2: [11]}


def test_shared_operators_are_split_by_the_weights():
    assert divide(range(4), [Share(1, EVERYONE), Share(2, EVERYONE)]) == {1: [0, 2], 2: [1, 3]}
    weights = [Share(1, dict.fromkeys(range(8), 3)), Share(2, dict.fromkeys(range(8), 1))]
    counted = divide(range(8), weights)
    assert (len(counted[1]), len(counted[2])) == (6, 2)


def test_a_campaign_without_leads_takes_nobody_and_its_operators_go_elsewhere():
    shares = [Share(1, EVERYONE, wanting=False), Share(2, {10: 1, 11: 1})]
    assert divide([10, 11, 12], shares) == {1: [], 2: [10, 11]}  # 12 works only campaign 1


def test_nobody_counts_for_a_campaign_they_do_not_work():
    shares = [Share(1, {10: 5}), Share(2, {11: 1})]
    assert divide([10, 10 + 1, 12], shares) == {1: [10], 2: [11]}


def test_one_free_operator_at_a_time_is_shared_over_time_by_the_weights():
    """A small team: one operator free per tick. The load carries the division over ticks,
    so the lighter campaign is not starved by the heavier one."""
    load, started = Load(), Counter()
    shares = [Share(1, {7: 3}), Share(2, {7: 1})]
    for tick in range(400):
        [campaign] = [c for c, ops in divide([7], shares, load.now(tick * 0.5)).items() if ops]
        load.started(campaign, 1)
        started[campaign] += 1
    assert started[1] + started[2] == 400
    assert 0.70 <= started[1] / 400 <= 0.80  # three quarters, within rounding of the turns


def test_the_load_halves_every_half_life():
    load = Load()
    load.now(0.0)
    load.started(1, 8)
    assert load.now(HALF_LIFE)[1] == 4.0
    assert load.now(3 * HALF_LIFE)[1] == 1.0


def test_operators_on_line_count_in_proportion_to_their_weights():
    shares = [Share(1, {1: 3, 2: 1}), Share(2, {1: 1}), Share(3, EVERYONE, wanting=False)]
    assert proportions([1, 2], shares) == {1: 0.75 + 1.0, 2: 0.25, 3: 0.0}


def test_free_operators_are_kept_for_the_calls_already_ringing():
    """Operator 1 works both campaigns, 2 only the default. The default's ringing call keeps
    operator 2 (who works fewer campaigns), so 1 is left to divide; two ringing calls of TV
    keep 1, the only one of TV's; a campaign keeps no more than its free operators."""
    shares = [Share(1, None), Share(2, {1: 1})]
    assert reserve([1, 2], shares, {1: 1}) == ([1], {1: 1})
    assert reserve([1, 2], shares, {2: 2}) == ([2], {2: 1})
    assert reserve([1, 2], shares, {1: 1, 2: 1}) == ([], {1: 1, 2: 1})
    assert reserve([1], shares, {1: 1, 2: 1}) == ([], {1: 1, 2: 0})  # a tie: the first
    assert reserve([3, 1], shares, {}) == ([3, 1], {})  # the order of the free kept
