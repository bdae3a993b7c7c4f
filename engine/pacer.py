"""Pacing: how many new calls a tenant's engine starts now (pure-Python twin of `_pacer`).

Modes (docs/pacing.md has the model and its assumptions; PRODUCT.md "Pacing"):

- progressive: one call in flight per free operator; no answered customer ever waits;
- multiplier: free operators x the call multiplier, rounded half up (5 x 1.2 = 6, 3 x 1.2 = 4);
- adaptive: a dial level of the kind VICIdial adapts: calls in flight plus operators busy
  kept at operators on line x the level; the level rises while operators wait and is cut
  while the measured abandon rate is over the cap;
- predictive: from the tenant's own recent attempts (priors first), the answer probability,
  ring times, handle time and wrap-up time (an operator in wrap-up is free again soon);
  starts as many calls as keep the expected abandon rate of the calls in flight under the
  cap, with a margin that tightens as the measured abandon rate (over the tenant's
  regulatory window) comes near the cap.

Every mode is held under the tenant's ceiling on concurrent calls and under its rate of new
calls per second (a token bucket). The engine (engine/dialer.py) and the call-centre
simulator (engine/sim/callcentre.py) drive a pacer the same way: `calls_to_start` every tick,
and the observations `ringing_ended`, `handled`, `abandoned`, `set_window` as they happen.

The Cython pacer (`engine/_pacer.pyx`) makes the same decisions, float operation for float
operation: change both together (tests/engine/test_pacer.py replays event streams on both).
"""

from __future__ import annotations

import math

from engine.pacing_modes import MODES, PacingMode

#: Priors of a new tenant, each worth as many observations as its weight.
PRIOR_ANSWER_PROBABILITY, PRIOR_ANSWER_WEIGHT = 0.3, 20.0
PRIOR_ANSWER_RING, PRIOR_NO_ANSWER_RING, PRIOR_RING_WEIGHT = 10.0, 25.0, 2.0
PRIOR_HANDLE_TIME, PRIOR_HANDLE_WEIGHT = 120.0, 2.0
#: The estimates follow about this many recent observations (exponential forgetting).
RECENT_ATTEMPTS, RECENT_HANDLED = 400.0, 100.0
#: Attempts observed before predictive pacing leaves progressive pacing (the warm-up).
WARM_UP_ATTEMPTS = 30
#: Answered calls of clean record assumed when reading the measured abandon rate, so that
#: one early abandon does not read as a 50% rate.
RATE_PRIOR_ANSWERED = 20.0
#: Adaptive: seconds between changes of the dial level, its step and its bounds.
ADAPT_INTERVAL, ADAPT_STEP, ADAPT_MIN, ADAPT_MAX = 15.0, 0.1, 1.0, 4.0
#: Predictive: the share of the cap the per-decision estimate may use at most (the model
#: lumps answers and frees over one horizon, so it is calibrated below the cap).
PREDICTIVE_SHARE = 0.5
#: Predictive: cohorts of started calls remembered at most.
COHORTS = 64
#: Predictive, the closed loop: the abandon rate aimed at, as a share of the cap (the rest
#: is the safety margin); the loop's step (each answered call raises the calibration by
#: exp(LOOP_STEP x aim), each abandoned one lowers it by exp(-LOOP_STEP): it settles where
#: the abandon rate is the aim), and the calibration's bounds.
AIM, LOOP_STEP, LOOP_MIN, LOOP_MAX = 0.75, 0.3, 0.25, 4.0
#: Predictive, the guard over the regulatory window: the full share while the measured rate
#: is under GUARD_FROM x cap, down to GUARD_FLOOR at GUARD_TO x cap and above.
GUARD_FROM, GUARD_TO, GUARD_FLOOR = 0.7, 0.95, 0.02


def target_in_flight(mode: str, free_operators: int, multiplier: float) -> int:
    """How many calls should be in flight for this many free operators (the modes that
    look at free operators only: progressive and multiplier)."""
    if mode not in MODES:
        raise ValueError(f"unknown pacing mode {mode!r}; use one of {', '.join(MODES)}")
    if free_operators <= 0:
        return 0
    if mode == PacingMode.MULTIPLIER:
        return math.floor(free_operators * multiplier + 0.5)
    return free_operators


def normal_tail(z: float) -> float:
    """E[max(Z - z, 0)] / 1 for a standard normal Z, written in + - * / and exp only so that
    both twins compute it bit for bit (Abramowitz & Stegun 26.2.17 for the tail)."""
    a = -z if z < 0.0 else z
    t = 1.0 / (1.0 + 0.2316419 * a)
    pdf = 0.3989422804014327 * math.exp(-0.5 * a * a)
    poly = t * (
        0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429)))
    )
    upper = pdf * poly  # P(Z > a)
    if z >= 0.0:
        return pdf - z * upper
    return pdf + a * (1.0 - upper)


class Pacer:
    """One tenant's pacing state: its ceilings, the token bucket of its call rate, and what
    it has learned of the tenant's calls."""

    def __init__(
        self,
        mode: str,
        multiplier: float = 1.0,
        max_calls_at_once: int = 100,
        calls_per_second: float = 10.0,
        now: float = 0.0,
        abandon_rate_cap: float = 3.0,
    ):
        target_in_flight(mode, 1, multiplier)  # refuse an unknown mode at once
        self.mode = mode
        self.multiplier = multiplier
        self.max_calls_at_once = max_calls_at_once
        self.calls_per_second = calls_per_second
        self.tokens = calls_per_second  # a full second's worth to start with
        self.last = now
        self.cap = abandon_rate_cap / 100.0
        # What the pacer has learned (estimates with their observation counts).
        self.attempts = 0
        self.answer_probability = PRIOR_ANSWER_PROBABILITY
        self.answer_ring = PRIOR_ANSWER_RING
        self.no_answer_ring = PRIOR_NO_ANSWER_RING
        self.answers = 0
        self.no_answers = 0
        self.handle_time = PRIOR_HANDLE_TIME
        self.handled_count = 0
        self.wrap_up_time = 0.0  # learned only from wrap-ups seen (the console's "call over")
        self.wrap_ups = 0
        # The measured abandon rate: the window's counts (from the database) and ours since.
        self.window_answered = 0
        self.window_abandoned = 0
        self.answered_since = 0
        self.abandoned_since = 0
        # Adaptive: the dial level, and the operators seen waiting since its last change.
        self.level = multiplier if multiplier > ADAPT_MIN else ADAPT_MIN
        self.adapt_at = now + ADAPT_INTERVAL
        self.waiting_sum = 0.0
        self.waiting_ticks = 0
        # Predictive: when the calls were started (cohorts of one second).
        self.cohort_at: list[float] = []
        self.cohort_calls: list[int] = []
        # Predictive, the closed loop: the model's calibration, learned from its abandons.
        self.loop = 1.0

    # --- observations -----------------------------------------------------------------------

    def ringing_ended(self, answered: bool, ring_time: float, now: float) -> None:
        """An attempt stopped ringing: the customer answered after `ring_time` seconds, or the
        attempt ended unanswered (no answer, busy, unavailable, error) after `ring_time`."""
        self.attempts += 1
        weight = 1.0 / (PRIOR_ANSWER_WEIGHT + self.attempts)
        if weight < 1.0 / RECENT_ATTEMPTS:
            weight = 1.0 / RECENT_ATTEMPTS
        if ring_time < 0.0:
            ring_time = 0.0
        if answered:
            self.answer_probability += weight * (1.0 - self.answer_probability)
            self.answers += 1
            self.answered_since += 1
            self.loop *= math.exp(LOOP_STEP * AIM * self.cap)
            if self.loop > LOOP_MAX:
                self.loop = LOOP_MAX
            ring_weight = 1.0 / (PRIOR_RING_WEIGHT + self.answers)
            if ring_weight < 1.0 / RECENT_HANDLED:
                ring_weight = 1.0 / RECENT_HANDLED
            self.answer_ring += ring_weight * (ring_time - self.answer_ring)
        else:
            self.answer_probability -= weight * self.answer_probability
            self.no_answers += 1
            ring_weight = 1.0 / (PRIOR_RING_WEIGHT + self.no_answers)
            if ring_weight < 1.0 / RECENT_HANDLED:
                ring_weight = 1.0 / RECENT_HANDLED
            self.no_answer_ring += ring_weight * (ring_time - self.no_answer_ring)

    def handled(self, handle_time: float, now: float, wrap_up_time: float = -1.0) -> None:
        """An operator finished a lead `handle_time` seconds (talk and wrap-up) after the
        customer was handed to them; `wrap_up_time`: the seconds of it spent in wrap-up,
        when the operator's console said the talk was over (-1: not seen)."""
        if handle_time < 0.0:
            handle_time = 0.0
        self.handled_count += 1
        weight = 1.0 / (PRIOR_HANDLE_WEIGHT + self.handled_count)
        if weight < 1.0 / RECENT_HANDLED:
            weight = 1.0 / RECENT_HANDLED
        self.handle_time += weight * (handle_time - self.handle_time)
        if wrap_up_time >= 0.0:
            self.wrap_ups += 1
            weight = 1.0 / self.wrap_ups
            if weight < 1.0 / RECENT_HANDLED:
                weight = 1.0 / RECENT_HANDLED
            self.wrap_up_time += weight * (wrap_up_time - self.wrap_up_time)

    def abandoned(self, now: float) -> None:
        """An answered customer found no free operator (detail `no_free_operator`)."""
        self.abandoned_since += 1
        self.loop *= math.exp(-LOOP_STEP)
        if self.loop < LOOP_MIN:
            self.loop = LOOP_MIN

    def set_window(self, answered: int, abandoned: int) -> None:
        """The answered and abandoned calls over the tenant's regulatory window, as the
        database counts them; the pacer's own counts start again from here."""
        self.window_answered = answered
        self.window_abandoned = abandoned
        self.answered_since = 0
        self.abandoned_since = 0

    def abandon_rate(self) -> float:
        """The measured abandon rate (abandoned / answered) over the regulatory window."""
        answered = self.window_answered + self.answered_since
        if answered <= 0:
            return 0.0
        return (self.window_abandoned + self.abandoned_since) / answered

    # --- the decision -----------------------------------------------------------------------

    def calls_to_start(
        self,
        free_operators: int,
        in_flight: int,
        now: float,
        on_line: int = -1,
        wrapping_up: int = 0,
    ) -> int:
        """New calls to start at time `now` (seconds), and take them from the bucket.
        `on_line`: operators on line, busy ones included (-1: unknown, only the free);
        `wrapping_up`: how many of the busy ones are in wrap-up (their talk is over)."""
        self.tokens = min(
            self.calls_per_second, self.tokens + (now - self.last) * self.calls_per_second
        )
        self.last = now
        if on_line < free_operators:
            on_line = free_operators
        free = free_operators if free_operators > 0 else 0
        if self.mode == PacingMode.ADAPTIVE:
            wanted = self._adaptive(free, in_flight, now, on_line)
        elif self.mode == PacingMode.PREDICTIVE:
            wanted = self._predictive(free, in_flight, now, on_line, wrapping_up)
        else:
            wanted = target_in_flight(self.mode, free, self.multiplier) - in_flight
        wanted = min(wanted, self.max_calls_at_once - in_flight, int(self.tokens))
        if wanted <= 0:
            return 0
        self.tokens -= wanted
        self._started(wanted, now)
        return wanted

    def _started(self, calls: int, now: float) -> None:
        """Remember when calls were started: one cohort a second, the oldest forgotten once
        they cannot be answered any more (or when there are COHORTS of them)."""
        horizon = now - 5.0 * (self.answer_ring if self.answer_ring > 0.5 else 0.5)
        while self.cohort_at and self.cohort_at[0] < horizon:
            del self.cohort_at[0]
            del self.cohort_calls[0]
        if self.cohort_at and now - self.cohort_at[-1] < 1.0:
            self.cohort_calls[-1] += calls
            return
        if len(self.cohort_at) == COHORTS:
            del self.cohort_at[0]
            del self.cohort_calls[0]
        self.cohort_at.append(now)
        self.cohort_calls.append(calls)

    def give_back(self, calls: int, now: float) -> None:
        """Calls allowed but not started (no due lead): back to the bucket, out of the
        calls in flight."""
        if calls <= 0:
            return
        self.tokens = min(self.calls_per_second, self.tokens + calls)
        while calls > 0 and self.cohort_at:
            taken = calls if calls < self.cohort_calls[-1] else self.cohort_calls[-1]
            self.cohort_calls[-1] -= taken
            calls -= taken
            if self.cohort_calls[-1] == 0:
                del self.cohort_at[-1]
                del self.cohort_calls[-1]

    def _adaptive(self, free: int, in_flight: int, now: float, on_line: int) -> int:
        self.waiting_sum += free
        self.waiting_ticks += 1
        if now >= self.adapt_at:
            waiting = self.waiting_sum / self.waiting_ticks
            rate = (self.window_abandoned + self.abandoned_since) / (
                self.window_answered + self.answered_since + RATE_PRIOR_ANSWERED
            )
            if rate > self.cap:  # over the cap: cut hard
                self.level = ADAPT_MIN + (self.level - ADAPT_MIN) * 0.5
            elif rate > 0.8 * self.cap:  # near it: ease down
                self.level -= ADAPT_STEP
            elif waiting >= 0.5:  # operators wait: dial more
                self.level += ADAPT_STEP
            if self.level < ADAPT_MIN:
                self.level = ADAPT_MIN
            if self.level > ADAPT_MAX:
                self.level = ADAPT_MAX
            self.adapt_at = now + ADAPT_INTERVAL
            self.waiting_sum = 0.0
            self.waiting_ticks = 0
        if on_line <= 0:
            return 0
        busy = on_line - free
        return math.floor(on_line * self.level + 0.5) - busy - in_flight

    def _predictive(
        self, free: int, in_flight: int, now: float, on_line: int, wrapping_up: int
    ) -> int:
        progressive = free - in_flight
        if on_line <= 0:
            return 0
        if self.attempts < WARM_UP_ATTEMPTS:
            return progressive
        # The margin: the share of the cap this decision may use, smaller as the measured
        # abandon rate comes near the cap, very small above it.
        rate = (self.window_abandoned + self.abandoned_since + 1) / (
            self.window_answered + self.answered_since + RATE_PRIOR_ANSWERED
        )
        use = rate / self.cap if self.cap > 0.0 else 1.0
        if use <= GUARD_FROM:
            share = 1.0
        elif use < GUARD_TO:
            share = 1.0 - (1.0 - GUARD_FLOOR) * (use - GUARD_FROM) / (GUARD_TO - GUARD_FROM)
        else:
            share = GUARD_FLOOR
        allowed = self.cap * PREDICTIVE_SHARE * share * self.loop
        p = self.answer_probability
        if p < 0.01:
            p = 0.01
        ring = self.answer_ring if self.answer_ring > 0.5 else 0.5
        # The calls started lately, by when: a call started `age` seconds ago is still to be
        # answered with probability p * exp(-age / ring) (answered ring times taken as
        # exponential); the calls of one cohort are independent.
        flight_mean = 0.0
        flight_var = 0.0
        for i in range(len(self.cohort_at)):
            chance = p * math.exp(-(now - self.cohort_at[i]) / ring)
            flight_mean += self.cohort_calls[i] * chance
            flight_var += self.cohort_calls[i] * chance * (1.0 - chance)
        supply, supply_var = self._supply(free, on_line - free, wrapping_up, ring, now)
        # Largest x (new calls) with E[answers over free operators] <= allowed * E[answers].
        limit = self.max_calls_at_once - in_flight
        if limit > int(self.tokens):
            limit = int(self.tokens)
        lo, hi = 0, limit
        if not self._fits(0, p, flight_mean, flight_var, supply, supply_var, allowed):
            lo = -1
        else:
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._fits(mid, p, flight_mean, flight_var, supply, supply_var, allowed):
                    lo = mid
                else:
                    hi = mid - 1
        return lo if lo > progressive else progressive

    def _supply(
        self, free: int, busy: int, wrapping_up: int, ring: float, now: float
    ) -> tuple[float, float]:
        """The operators there for the answers to the calls started now: the free ones, and
        each busy one who is free again within a ring time, as mean and variance. Handle and
        wrap-up times are taken as exponential: a busy operator is free again within `ring`
        with probability 1 - exp(-ring / handle); once wrap-ups are seen, one in wrap-up with
        1 - exp(-ring / wrap), one still talking only after a talk and a wrap-up."""
        handle = self.handle_time if self.handle_time > 1.0 else 1.0
        if self.wrap_ups == 0 or busy <= 0:
            q = 1.0 - math.exp(-ring / handle)
            return free + busy * q, busy * q * (1.0 - q)
        if wrapping_up > busy:
            wrapping_up = busy
        if wrapping_up < 0:
            wrapping_up = 0
        wrap = self.wrap_up_time if self.wrap_up_time > 0.5 else 0.5
        talk = handle - wrap
        if talk < 1.0:
            talk = 1.0
        q_wrap = 1.0 - math.exp(-ring / wrap)
        if talk - wrap < 0.01 and wrap - talk < 0.01:  # the same means: an Erlang's tail
            q_talk = 1.0 - (1.0 + ring / talk) * math.exp(-ring / talk)
        else:  # talk then wrap-up, both exponential (hypoexponential)
            q_talk = 1.0 - (talk * math.exp(-ring / talk) - wrap * math.exp(-ring / wrap)) / (
                talk - wrap
            )
        talking = busy - wrapping_up
        mean = free + wrapping_up * q_wrap + talking * q_talk
        var = wrapping_up * q_wrap * (1.0 - q_wrap) + talking * q_talk * (1.0 - q_talk)
        return mean, var

    @staticmethod
    def _fits(
        x: int,
        p: float,
        flight_mean: float,
        flight_var: float,
        supply: float,
        supply_var: float,
        allowed: float,
    ) -> bool:
        answers = flight_mean + x * p
        if answers <= 0.0:
            return True
        mean = answers - supply
        var = flight_var + x * p * (1.0 - p) + supply_var
        if var < 1e-9:
            over = mean if mean > 0.0 else 0.0
        else:
            sd = math.sqrt(var)
            over = sd * normal_tail(-mean / sd)
        return over <= allowed * answers
