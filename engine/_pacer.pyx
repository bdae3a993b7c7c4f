# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Pacing compiled with Cython: the same API and decisions as `engine.pacer` (its twin),
float operation for float operation. Change both together; docs/pacing.md has the model."""

from libc.math cimport exp, floor, sqrt

from engine.pacer import (ADAPT_INTERVAL, ADAPT_MAX, ADAPT_MIN, ADAPT_STEP, AIM, COHORTS,
                          GUARD_FLOOR, GUARD_FROM, GUARD_TO, LOOP_MAX, LOOP_MIN, LOOP_STEP, MODES,
                          PREDICTIVE_SHARE, PRIOR_ANSWER_PROBABILITY, PRIOR_ANSWER_RING,
                          PRIOR_ANSWER_WEIGHT, PRIOR_HANDLE_TIME, PRIOR_HANDLE_WEIGHT,
                          PRIOR_NO_ANSWER_RING, PRIOR_RING_WEIGHT, RATE_PRIOR_ANSWERED,
                          RECENT_ATTEMPTS, RECENT_HANDLED, WARM_UP_ATTEMPTS, PacingMode)

cdef enum:
    M_PROGRESSIVE = 1
    M_MULTIPLIER = 2
    M_ADAPTIVE = 3
    M_PREDICTIVE = 4
    MAX_COHORTS = 64

assert COHORTS == MAX_COHORTS

cdef double C_ANSWER_P = PRIOR_ANSWER_PROBABILITY, C_ANSWER_W = PRIOR_ANSWER_WEIGHT
cdef double C_ANSWER_RING = PRIOR_ANSWER_RING, C_NO_ANSWER_RING = PRIOR_NO_ANSWER_RING
cdef double C_RING_W = PRIOR_RING_WEIGHT, C_HANDLE = PRIOR_HANDLE_TIME
cdef double C_HANDLE_W = PRIOR_HANDLE_WEIGHT, C_RECENT_ATTEMPTS = RECENT_ATTEMPTS
cdef double C_RECENT_HANDLED = RECENT_HANDLED, C_RATE_PRIOR = RATE_PRIOR_ANSWERED
cdef double C_ADAPT_INTERVAL = ADAPT_INTERVAL, C_ADAPT_STEP = ADAPT_STEP
cdef double C_ADAPT_MIN = ADAPT_MIN, C_ADAPT_MAX = ADAPT_MAX, C_SHARE = PREDICTIVE_SHARE
cdef long C_WARM_UP = WARM_UP_ATTEMPTS
cdef double C_AIM = AIM, C_LOOP_STEP = LOOP_STEP, C_LOOP_MIN = LOOP_MIN, C_LOOP_MAX = LOOP_MAX
cdef double C_GUARD_FROM = GUARD_FROM, C_GUARD_TO = GUARD_TO, C_GUARD_FLOOR = GUARD_FLOOR


cdef int _mode(object mode) except -1:  # a str, or a PacingMode (a str subclass)
    if mode == PacingMode.PROGRESSIVE:
        return M_PROGRESSIVE
    if mode == PacingMode.MULTIPLIER:
        return M_MULTIPLIER
    if mode == PacingMode.ADAPTIVE:
        return M_ADAPTIVE
    if mode == PacingMode.PREDICTIVE:
        return M_PREDICTIVE
    raise ValueError(f"unknown pacing mode {mode!r}; use one of {', '.join(MODES)}")


cdef inline long _target(int mode, long free_operators, double multiplier) noexcept:
    if free_operators <= 0:
        return 0
    if mode == M_MULTIPLIER:
        return <long>floor(free_operators * multiplier + 0.5)
    return free_operators


def target_in_flight(object mode, long free_operators, double multiplier):
    """How many calls should be in flight for this many free operators (the modes that
    look at free operators only: progressive and multiplier)."""
    return _target(_mode(mode), free_operators, multiplier)


cdef inline double _normal_tail(double z) noexcept:
    cdef double a = -z if z < 0.0 else z
    cdef double t = 1.0 / (1.0 + 0.2316419 * a)
    cdef double pdf = 0.3989422804014327 * exp(-0.5 * a * a)
    cdef double poly = t * (0.319381530 + t * (-0.356563782 + t * (1.781477937
                            + t * (-1.821255978 + t * 1.330274429))))
    cdef double upper = pdf * poly
    if z >= 0.0:
        return pdf - z * upper
    return pdf + a * (1.0 - upper)


def normal_tail(double z):
    """E[max(Z - z, 0)] for a standard normal Z (the twin's formula)."""
    return _normal_tail(z)


cdef inline bint _fits(long x, double p, double flight_mean, double flight_var, double supply,
                       double supply_var, double allowed) noexcept:
    cdef double answers = flight_mean + x * p
    cdef double mean, var, sd, over
    if answers <= 0.0:
        return True
    mean = answers - supply
    var = flight_var + x * p * (1.0 - p) + supply_var
    if var < 1e-9:
        over = mean if mean > 0.0 else 0.0
    else:
        sd = sqrt(var)
        over = sd * _normal_tail(-mean / sd)
    return over <= allowed * answers


cdef class Pacer:
    """One tenant's pacing state: its ceilings, the token bucket of its call rate, and what
    it has learned of the tenant's calls."""

    cdef int _mode_id
    cdef public object mode
    cdef public double multiplier
    cdef public long max_calls_at_once
    cdef public double calls_per_second
    cdef public double tokens
    cdef public double last
    cdef public double cap
    cdef public long attempts, answers, no_answers, handled_count
    cdef public double answer_probability, answer_ring, no_answer_ring, handle_time
    cdef public double wrap_up_time
    cdef public long wrap_ups
    cdef public long window_answered, window_abandoned, answered_since, abandoned_since
    cdef public double level, adapt_at, waiting_sum
    cdef public long waiting_ticks
    cdef public double loop
    cdef double _cohort_at[MAX_COHORTS]
    cdef long _cohort_calls[MAX_COHORTS]
    cdef int _cohorts

    def __init__(self, object mode, double multiplier=1.0, long max_calls_at_once=100,
                 double calls_per_second=10.0, double now=0.0, double abandon_rate_cap=3.0):
        self._mode_id = _mode(mode)
        self.mode = mode
        self.multiplier = multiplier
        self.max_calls_at_once = max_calls_at_once
        self.calls_per_second = calls_per_second
        self.tokens = calls_per_second
        self.last = now
        self.cap = abandon_rate_cap / 100.0
        self.attempts = 0
        self.answer_probability = C_ANSWER_P
        self.answer_ring = C_ANSWER_RING
        self.no_answer_ring = C_NO_ANSWER_RING
        self.answers = 0
        self.no_answers = 0
        self.handle_time = C_HANDLE
        self.handled_count = 0
        self.wrap_up_time = 0.0
        self.wrap_ups = 0
        self.window_answered = 0
        self.window_abandoned = 0
        self.answered_since = 0
        self.abandoned_since = 0
        self.level = multiplier if multiplier > C_ADAPT_MIN else C_ADAPT_MIN
        self.adapt_at = now + C_ADAPT_INTERVAL
        self.waiting_sum = 0.0
        self.waiting_ticks = 0
        self._cohorts = 0
        self.loop = 1.0

    @property
    def cohort_at(self):
        return [self._cohort_at[i] for i in range(self._cohorts)]

    @property
    def cohort_calls(self):
        return [self._cohort_calls[i] for i in range(self._cohorts)]

    # --- observations -----------------------------------------------------------------------

    cpdef void ringing_ended(self, bint answered, double ring_time, double now):
        """An attempt stopped ringing: answered after `ring_time` seconds, or not."""
        cdef double weight, ring_weight
        self.attempts += 1
        weight = 1.0 / (C_ANSWER_W + self.attempts)
        if weight < 1.0 / C_RECENT_ATTEMPTS:
            weight = 1.0 / C_RECENT_ATTEMPTS
        if ring_time < 0.0:
            ring_time = 0.0
        if answered:
            self.answer_probability += weight * (1.0 - self.answer_probability)
            self.answers += 1
            self.answered_since += 1
            self.loop *= exp(C_LOOP_STEP * C_AIM * self.cap)
            if self.loop > C_LOOP_MAX:
                self.loop = C_LOOP_MAX
            ring_weight = 1.0 / (C_RING_W + self.answers)
            if ring_weight < 1.0 / C_RECENT_HANDLED:
                ring_weight = 1.0 / C_RECENT_HANDLED
            self.answer_ring += ring_weight * (ring_time - self.answer_ring)
        else:
            self.answer_probability -= weight * self.answer_probability
            self.no_answers += 1
            ring_weight = 1.0 / (C_RING_W + self.no_answers)
            if ring_weight < 1.0 / C_RECENT_HANDLED:
                ring_weight = 1.0 / C_RECENT_HANDLED
            self.no_answer_ring += ring_weight * (ring_time - self.no_answer_ring)

    cpdef void handled(self, double handle_time, double now, double wrap_up_time=-1.0):
        """An operator finished a lead `handle_time` seconds after the hand-over, of them
        `wrap_up_time` in wrap-up (-1: not seen)."""
        cdef double weight
        if handle_time < 0.0:
            handle_time = 0.0
        self.handled_count += 1
        weight = 1.0 / (C_HANDLE_W + self.handled_count)
        if weight < 1.0 / C_RECENT_HANDLED:
            weight = 1.0 / C_RECENT_HANDLED
        self.handle_time += weight * (handle_time - self.handle_time)
        if wrap_up_time >= 0.0:
            self.wrap_ups += 1
            weight = 1.0 / self.wrap_ups
            if weight < 1.0 / C_RECENT_HANDLED:
                weight = 1.0 / C_RECENT_HANDLED
            self.wrap_up_time += weight * (wrap_up_time - self.wrap_up_time)

    cpdef void abandoned(self, double now):
        """An answered customer found no free operator (detail `no_free_operator`)."""
        self.abandoned_since += 1
        self.loop *= exp(-C_LOOP_STEP)
        if self.loop < C_LOOP_MIN:
            self.loop = C_LOOP_MIN

    cpdef void set_window(self, long answered, long abandoned):
        """The answered and abandoned calls over the regulatory window (the database's)."""
        self.window_answered = answered
        self.window_abandoned = abandoned
        self.answered_since = 0
        self.abandoned_since = 0

    cpdef double abandon_rate(self):
        """The measured abandon rate (abandoned / answered) over the regulatory window."""
        cdef long answered = self.window_answered + self.answered_since
        if answered <= 0:
            return 0.0
        return (self.window_abandoned + self.abandoned_since) / <double>answered

    # --- the decision -----------------------------------------------------------------------

    cpdef long calls_to_start(self, long free_operators, long in_flight, double now,
                              long on_line=-1, long wrapping_up=0):
        """New calls to start at time `now` (seconds), and take them from the bucket.
        `on_line`: operators on line, busy ones included (-1: unknown, only the free);
        `wrapping_up`: how many of the busy ones are in wrap-up (their talk is over)."""
        cdef long wanted, free
        self.tokens = min(self.calls_per_second,
                          self.tokens + (now - self.last) * self.calls_per_second)
        self.last = now
        if on_line < free_operators:
            on_line = free_operators
        free = free_operators if free_operators > 0 else 0
        if self._mode_id == M_ADAPTIVE:
            wanted = self._adaptive(free, in_flight, now, on_line)
        elif self._mode_id == M_PREDICTIVE:
            wanted = self._predictive(free, in_flight, now, on_line, wrapping_up)
        else:
            wanted = _target(self._mode_id, free, self.multiplier) - in_flight
        wanted = min(wanted, self.max_calls_at_once - in_flight, <long>self.tokens)
        if wanted <= 0:
            return 0
        self.tokens -= wanted
        self._started(wanted, now)
        return wanted

    cdef void _drop_oldest(self) noexcept:
        cdef int i
        for i in range(1, self._cohorts):
            self._cohort_at[i - 1] = self._cohort_at[i]
            self._cohort_calls[i - 1] = self._cohort_calls[i]
        self._cohorts -= 1

    cdef void _started(self, long calls, double now) noexcept:
        cdef double horizon = now - 5.0 * (self.answer_ring if self.answer_ring > 0.5 else 0.5)
        while self._cohorts > 0 and self._cohort_at[0] < horizon:
            self._drop_oldest()
        if self._cohorts > 0 and now - self._cohort_at[self._cohorts - 1] < 1.0:
            self._cohort_calls[self._cohorts - 1] += calls
            return
        if self._cohorts == MAX_COHORTS:
            self._drop_oldest()
        self._cohort_at[self._cohorts] = now
        self._cohort_calls[self._cohorts] = calls
        self._cohorts += 1

    cpdef void give_back(self, long calls, double now):
        """Calls allowed but not started (no due lead): back to the bucket, out of the
        calls in flight."""
        cdef long taken
        if calls <= 0:
            return
        self.tokens = min(self.calls_per_second, self.tokens + calls)
        while calls > 0 and self._cohorts > 0:
            taken = calls if calls < self._cohort_calls[self._cohorts - 1] else \
                self._cohort_calls[self._cohorts - 1]
            self._cohort_calls[self._cohorts - 1] -= taken
            calls -= taken
            if self._cohort_calls[self._cohorts - 1] == 0:
                self._cohorts -= 1

    cdef long _adaptive(self, long free, long in_flight, double now, long on_line):
        cdef double waiting, rate
        cdef long busy
        self.waiting_sum += free
        self.waiting_ticks += 1
        if now >= self.adapt_at:
            waiting = self.waiting_sum / self.waiting_ticks
            rate = (self.window_abandoned + self.abandoned_since) / (
                self.window_answered + self.answered_since + C_RATE_PRIOR)
            if rate > self.cap:
                self.level = C_ADAPT_MIN + (self.level - C_ADAPT_MIN) * 0.5
            elif rate > 0.8 * self.cap:
                self.level -= C_ADAPT_STEP
            elif waiting >= 0.5:
                self.level += C_ADAPT_STEP
            if self.level < C_ADAPT_MIN:
                self.level = C_ADAPT_MIN
            if self.level > C_ADAPT_MAX:
                self.level = C_ADAPT_MAX
            self.adapt_at = now + C_ADAPT_INTERVAL
            self.waiting_sum = 0.0
            self.waiting_ticks = 0
        if on_line <= 0:
            return 0
        busy = on_line - free
        return <long>floor(on_line * self.level + 0.5) - busy - in_flight

    cdef void _supply(self, long free, long busy, long wrapping_up, double ring,
                      double* mean, double* var) noexcept:
        """The operators there for the answers to the calls started now (the twin's
        `_supply`): mean and variance."""
        cdef double handle = self.handle_time if self.handle_time > 1.0 else 1.0
        cdef double q, wrap, talk, q_wrap, q_talk
        cdef long talking
        if self.wrap_ups == 0 or busy <= 0:
            q = 1.0 - exp(-ring / handle)
            mean[0] = free + busy * q
            var[0] = busy * q * (1.0 - q)
            return
        if wrapping_up > busy:
            wrapping_up = busy
        if wrapping_up < 0:
            wrapping_up = 0
        wrap = self.wrap_up_time if self.wrap_up_time > 0.5 else 0.5
        talk = handle - wrap
        if talk < 1.0:
            talk = 1.0
        q_wrap = 1.0 - exp(-ring / wrap)
        if talk - wrap < 0.01 and wrap - talk < 0.01:
            q_talk = 1.0 - (1.0 + ring / talk) * exp(-ring / talk)
        else:
            q_talk = 1.0 - (talk * exp(-ring / talk) - wrap * exp(-ring / wrap)) / (
                talk - wrap)
        talking = busy - wrapping_up
        mean[0] = free + wrapping_up * q_wrap + talking * q_talk
        var[0] = wrapping_up * q_wrap * (1.0 - q_wrap) + talking * q_talk * (1.0 - q_talk)

    cdef long _predictive(self, long free, long in_flight, double now, long on_line,
                          long wrapping_up):
        cdef long progressive = free - in_flight
        cdef double rate, use, share, allowed, p, ring, chance
        cdef double flight_mean, flight_var, supply, supply_var
        cdef long limit, lo, hi, mid
        cdef int i
        if on_line <= 0:
            return 0
        if self.attempts < C_WARM_UP:
            return progressive
        rate = (self.window_abandoned + self.abandoned_since + 1) / (
            self.window_answered + self.answered_since + C_RATE_PRIOR)
        use = rate / self.cap if self.cap > 0.0 else 1.0
        if use <= C_GUARD_FROM:
            share = 1.0
        elif use < C_GUARD_TO:
            share = 1.0 - (1.0 - C_GUARD_FLOOR) * (use - C_GUARD_FROM) / (
                C_GUARD_TO - C_GUARD_FROM)
        else:
            share = C_GUARD_FLOOR
        allowed = self.cap * C_SHARE * share * self.loop
        p = self.answer_probability
        if p < 0.01:
            p = 0.01
        ring = self.answer_ring if self.answer_ring > 0.5 else 0.5
        flight_mean = 0.0
        flight_var = 0.0
        for i in range(self._cohorts):
            chance = p * exp(-(now - self._cohort_at[i]) / ring)
            flight_mean += self._cohort_calls[i] * chance
            flight_var += self._cohort_calls[i] * chance * (1.0 - chance)
        self._supply(free, on_line - free, wrapping_up, ring, &supply, &supply_var)
        limit = self.max_calls_at_once - in_flight
        if limit > <long>self.tokens:
            limit = <long>self.tokens
        lo = 0
        hi = limit
        if not _fits(0, p, flight_mean, flight_var, supply, supply_var, allowed):
            lo = -1
        else:
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _fits(mid, p, flight_mean, flight_var, supply, supply_var, allowed):
                    lo = mid
                else:
                    hi = mid - 1
        return lo if lo > progressive else progressive
