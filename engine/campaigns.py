"""How a tenant's engine divides its free operators among its running campaigns.

An operator may work several campaigns, each with a weight (1 to 100; docs/engine.md, "Campaigns
and operators"). They are one person: the engine never hands them two customers, because it
takes an operator for an answered customer atomically in Redis (engine/presence.py) and only
among those who work the customer's campaign. What this module decides is how many calls
each campaign may start: each campaign's pacer is told its share of the free operators.

The rule, for each free operator in turn (the longest free first): of the campaigns they work
that have leads to dial, they count toward the one with the highest

    weight of the operator in the campaign / (1 + the campaign's load)

where the load is the calls the campaign started lately (`Load`: each call counts 1, halving
every `HALF_LIFE` seconds) plus the operators already counted toward it in this division
(ties: the campaign with the lower load, then the lower id). It is the highest averages method
(D'Hondt) of apportioning seats, carried over time, so:

- an operator in one campaign always counts toward it;
- two campaigns that share their operators with equal weights start about half of the calls
  each, and weights of 3 and 1 three quarters and one quarter, even on a small team where a
  single operator is free at a time: no campaign starves while it has operators and leads;
- a campaign without due leads takes nobody (its operators count for the others at once,
  which VICIdial's fixed "campaign rank" does not do: there a higher-ranked campaign keeps
  its agents waiting for calls the lower ones could have given them).

When a customer answers, the engine takes a free operator of the customer's campaign, the one
who works the fewest running campaigns first (`ranks`): an operator who works only this
campaign before one whom another campaign's customers, ringing now, may need.

Before the division, the free operators that the campaigns' calls in flight will want are
kept for those campaigns (`reserve`): each pacer is told its own part plus what it kept, and
its own calls in flight.

The same shares weigh what the learning pacers count (operators on line, in wrap-up): an
operator on line counts toward each campaign they work in proportion to their weights there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: Seconds after which a started call weighs half as much in a campaign's load.
HALF_LIFE = 60.0


@dataclass(frozen=True)
class Share:
    """A running campaign as the division sees it: who works it (operator id -> weight;
    None: every operator, weight 1), and whether it has leads to dial now."""

    campaign_id: int
    weights: Mapping[int, int] | None
    wanting: bool = True

    def weight(self, operator: int) -> int:
        if self.weights is None:
            return 1
        return self.weights.get(operator, 0)


class Load:
    """Each campaign's calls started lately, halving every `HALF_LIFE` seconds."""

    def __init__(self) -> None:
        self._load: dict[int, float] = {}
        self._at: float | None = None

    def now(self, now: float) -> Mapping[int, float]:
        if self._at is not None and now > self._at:
            factor = 0.5 ** ((now - self._at) / HALF_LIFE)
            self._load = {c: value * factor for c, value in self._load.items() if value > 1e-3}
        self._at = now
        return self._load

    def started(self, campaign_id: int, calls: int) -> None:
        self._load[campaign_id] = self._load.get(campaign_id, 0.0) + calls


def reserve(
    free: Sequence[int], campaigns: Sequence[Share], calls: Mapping[int, int]
) -> tuple[list[int], dict[int, int]]:
    """Free operators kept for the calls already ringing: `calls` is {campaign id: how many
    operators its calls in flight will want}; each campaign keeps up to that many of the
    free operators who work it (the campaigns with the fewest such operators first, and of
    those the operators who work the fewest campaigns first). Returns the operators left to
    divide, in their order, and how many each campaign kept. Without it, a ringing call of
    one campaign and a new call of another could both count on one free operator, and the
    second customer to answer would find nobody."""
    pool = list(free)
    kept: dict[int, int] = {}

    def works(operator: int) -> int:
        return sum(1 for share in campaigns if share.weight(operator) > 0)

    for share in sorted(campaigns, key=lambda s: sum(1 for op in pool if s.weight(op) > 0)):
        wanted = calls.get(share.campaign_id, 0)
        if wanted <= 0:
            continue
        mine = sorted((op for op in pool if share.weight(op) > 0), key=works)[:wanted]
        for operator in mine:
            pool.remove(operator)
        kept[share.campaign_id] = len(mine)
    return pool, kept


def divide(
    free: Iterable[int], campaigns: Sequence[Share], load: Mapping[int, float] | None = None
) -> dict[int, list[int]]:
    """{campaign id: the free operators counted toward it} for every campaign given (an
    empty list when none), by the rule above. `free` in the order they became free; `load`
    the campaigns' loads (`Load.now`; none: all zero)."""
    counted: dict[int, list[int]] = {share.campaign_id: [] for share in campaigns}
    wanting = [share for share in campaigns if share.wanting]
    load = load or {}
    for operator in free:
        best: Share | None = None
        best_key: tuple[float, float, int] | None = None
        for share in wanting:
            weight = share.weight(operator)
            if weight <= 0:
                continue
            taken = load.get(share.campaign_id, 0.0) + len(counted[share.campaign_id])
            key = (weight / (1 + taken), -taken, -share.campaign_id)
            if best_key is None or key > best_key:
                best, best_key = share, key
        if best is not None:
            counted[best.campaign_id].append(operator)
    return counted


def proportions(operators: Iterable[int], campaigns: Sequence[Share]) -> dict[int, float]:
    """{campaign id: how many of these operators count toward it}, each operator split over
    the wanting campaigns they work in proportion to their weights (the learning pacers'
    operators on line and in wrap-up)."""
    out = {share.campaign_id: 0.0 for share in campaigns}
    wanting = [share for share in campaigns if share.wanting]
    for operator in operators:
        weights = [(share, share.weight(operator)) for share in wanting]
        total = sum(weight for _share, weight in weights if weight > 0)
        for share, weight in weights:
            if weight > 0:
                out[share.campaign_id] += weight / total
    return out


def ranks(campaigns: Sequence, operators: Iterable[int]) -> dict[int, dict[int, int] | None]:
    """{campaign id: {operator: rank}} for taking an operator for an answered customer: those
    who work the campaign, ranked by how many running campaigns they work, so that an
    operator who works only this one is taken before one whom other campaigns' customers
    may need (None for every campaign when there is one that everyone works alone: anyone).
    `campaigns`: the running ones (engine.store.CampaignSettings); `operators`: the active."""
    active = list(operators)
    if len(campaigns) == 1 and campaigns[0].weights is None:
        return {campaigns[0].campaign_id: None}
    works = {
        c.campaign_id: [op for op in active if c.weights is None or c.weights.get(op, 0) > 0]
        for c in campaigns
    }
    count: dict[int, int] = {}
    for ops in works.values():
        for op in ops:
            count[op] = count.get(op, 0) + 1
    return {c: {op: count[op] for op in ops} for c, ops in works.items()}
