# cython: language_level=3, cdivision=True
"""Pacing compiled with Cython: the same API and decisions as `engine.pacer` (its twin)."""

from libc.math cimport floor

from engine.pacer import MODES, MULTIPLIER, PROGRESSIVE

cdef enum:
    M_PROGRESSIVE = 1
    M_MULTIPLIER = 2


cdef int _mode(str mode) except -1:
    if mode == PROGRESSIVE:
        return M_PROGRESSIVE
    if mode == MULTIPLIER:
        return M_MULTIPLIER
    raise ValueError(f"unknown pacing mode {mode!r}; use one of {', '.join(MODES)}")


cdef inline long _target(int mode, long free_operators, double multiplier) noexcept:
    if free_operators <= 0:
        return 0
    if mode == M_PROGRESSIVE:
        return free_operators
    return <long>floor(free_operators * multiplier + 0.5)


def target_in_flight(str mode, long free_operators, double multiplier):
    """How many calls should be in flight for this many free operators."""
    return _target(_mode(mode), free_operators, multiplier)


cdef class Pacer:
    """One tenant's pacing state: its ceilings and the token bucket of its call rate."""

    cdef int _mode_id
    cdef public str mode
    cdef public double multiplier
    cdef public long max_in_flight
    cdef public double calls_per_second
    cdef public double tokens
    cdef public double last

    def __init__(self, str mode, double multiplier=1.0, long max_in_flight=100,
                 double calls_per_second=10.0, double now=0.0):
        self._mode_id = _mode(mode)
        self.mode = mode
        self.multiplier = multiplier
        self.max_in_flight = max_in_flight
        self.calls_per_second = calls_per_second
        self.tokens = calls_per_second
        self.last = now

    cpdef long calls_to_start(self, long free_operators, long in_flight, double now):
        """New calls to start at time `now` (seconds), and take them from the bucket."""
        self.tokens = min(self.calls_per_second,
                          self.tokens + (now - self.last) * self.calls_per_second)
        self.last = now
        cdef long wanted = _target(self._mode_id, free_operators, self.multiplier) - in_flight
        wanted = min(wanted, self.max_in_flight - in_flight, <long>self.tokens)
        if wanted <= 0:
            return 0
        self.tokens -= wanted
        return wanted
