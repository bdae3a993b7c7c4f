"""Pacing: how many new calls a tenant's engine starts now (pure-Python twin of `_pacer`).

Modes (docs/architecture.md; PRODUCT.md "Pacing"):
- progressive: one call in flight per free operator; no answered customer ever waits;
- multiplier: free operators x the call multiplier, rounded half up (5 x 1.2 = 6, 3 x 1.2 = 4).
Predictive pacing comes with its own issue. Every mode is held under the tenant's ceiling on
concurrent calls and under its rate of new calls per second (a token bucket).
"""

from __future__ import annotations

import math

PROGRESSIVE = "progressive"
MULTIPLIER = "multiplier"
MODES = (PROGRESSIVE, MULTIPLIER)


def target_in_flight(mode: str, free_operators: int, multiplier: float) -> int:
    """How many calls should be in flight for this many free operators."""
    if free_operators <= 0:
        return 0
    if mode == PROGRESSIVE:
        return free_operators
    if mode == MULTIPLIER:
        return math.floor(free_operators * multiplier + 0.5)
    raise ValueError(f"unknown pacing mode {mode!r}; use one of {', '.join(MODES)}")


class Pacer:
    """One tenant's pacing state: its ceilings and the token bucket of its call rate."""

    def __init__(self, mode: str, multiplier: float = 1.0, max_in_flight: int = 100,
                 calls_per_second: float = 10.0, now: float = 0.0):  # fmt: skip
        target_in_flight(mode, 1, multiplier)  # refuse an unknown mode at once
        self.mode = mode
        self.multiplier = multiplier
        self.max_in_flight = max_in_flight
        self.calls_per_second = calls_per_second
        self.tokens = calls_per_second  # a full second's worth to start with
        self.last = now

    def calls_to_start(self, free_operators: int, in_flight: int, now: float) -> int:
        """New calls to start at time `now` (seconds), and take them from the bucket."""
        self.tokens = min(
            self.calls_per_second, self.tokens + (now - self.last) * self.calls_per_second
        )
        self.last = now
        wanted = target_in_flight(self.mode, free_operators, self.multiplier) - in_flight
        wanted = min(wanted, self.max_in_flight - in_flight, int(self.tokens))
        if wanted <= 0:
            return 0
        self.tokens -= wanted
        return wanted
