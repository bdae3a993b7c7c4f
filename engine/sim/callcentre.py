"""The call-centre simulator: one tenant's dialing, in simulated time, paced by the engine's
own pacer (engine/_pacer.pyx, or its twin engine/pacer.py) through the engine's interface.

A discrete-event simulation. Every `tick` seconds the pacer is asked, as the engine asks it,
how many calls to start (free operators, calls in flight, operators on line); each call
started rings, and is answered with the workload's answer probability after an answered
ring time, or ends unanswered after an unanswered ring time. An answered customer is handed
to the operator who has waited longest; with nobody free, the customer waits at most
`abandon_tolerance` seconds for one, and is abandoned after that (the engine's detail
`no_free_operator`). An operator is busy for the handle time (talk + wrap-up), then free.
Operators come on and go off line on the workload's schedule (one going off line while busy
leaves when the call ends). The pacer hears what the engine tells it: `ringing_ended`,
`handled` (with the wrap-up time: the operator's console says when the talk is over),
`abandoned`, and at each tick how many operators are free, on line and in wrap-up.

Each random quantity has its own random stream seeded from `--seed`, so two modes run on the
same seed meet the same customers (common random numbers): the comparison is fair.

The workload's JSON format is in docs/pacing.md; examples in engine/sim/workloads/.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compiled import load
from engine.pacer import Pacer

WORKLOADS = Path(__file__).parent / "workloads"


class WorkloadError(ValueError):
    """A workload file that cannot be run; the message says what is wrong, in words."""


# --- distributions ------------------------------------------------------------------------


def _number(value, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WorkloadError(f"{where}: expected a number, got {value!r}")
    if value < minimum:
        raise WorkloadError(f"{where}: must be at least {minimum:g}, got {value!r}")
    return float(value)


class Distribution:
    """A distribution of seconds, read from the workload (docs/pacing.md):
    {"constant": s}, {"uniform": [a, b]}, {"exponential": mean},
    {"lognormal": {"mean": m, "sigma": s}}, {"pareto": {"mean": m, "shape": a}},
    {"mix": [[weight, distribution], ...]}; any of them may add "max": seconds."""

    def __init__(self, spec, where: str):
        if not isinstance(spec, dict):
            raise WorkloadError(
                f'{where}: expected a distribution such as {{"exponential": 120}}, got {spec!r}'
            )
        spec = dict(spec)
        self.max = _number(spec.pop("max"), f"{where}.max") if "max" in spec else math.inf
        if len(spec) != 1:
            raise WorkloadError(
                f"{where}: name exactly one kind of distribution "
                "(constant, uniform, exponential, lognormal, pareto, mix)"
            )
        ((kind, value),) = spec.items()
        self.kind = kind
        self.parts: list[tuple[float, Distribution]] = []
        if kind == "constant":
            self.a = _number(value, f"{where}.constant")
        elif kind == "uniform":
            if not isinstance(value, list) or len(value) != 2:
                raise WorkloadError(f"{where}.uniform: expected [low, high]")
            self.a = _number(value[0], f"{where}.uniform[0]")
            self.b = _number(value[1], f"{where}.uniform[1]", self.a)
        elif kind == "exponential":
            self.a = _number(value, f"{where}.exponential", 1e-9)
        elif kind in ("lognormal", "pareto"):
            if not isinstance(value, dict) or set(value) != {
                "mean",
                "sigma" if kind == "lognormal" else "shape",
            }:
                other = "sigma" if kind == "lognormal" else "shape"
                raise WorkloadError(
                    f'{where}.{kind}: expected {{"mean": seconds, "{other}": '
                    f"number}}, got {value!r}"
                )
            mean = _number(value["mean"], f"{where}.{kind}.mean", 1e-9)
            if kind == "lognormal":
                sigma = _number(value["sigma"], f"{where}.lognormal.sigma")
                self.a, self.b = math.log(mean) - sigma * sigma / 2, sigma
            else:
                shape = _number(value["shape"], f"{where}.pareto.shape")
                if shape <= 1.0:
                    raise WorkloadError(
                        f"{where}.pareto.shape: must be over 1 (a finite mean), got {shape:g}"
                    )
                self.a, self.b = mean * (shape - 1) / shape, shape  # minimum, shape
        elif kind == "mix":
            if not isinstance(value, list) or not value:
                raise WorkloadError(f"{where}.mix: expected [[weight, distribution], ...]")
            for i, part in enumerate(value):
                if not isinstance(part, list) or len(part) != 2:
                    raise WorkloadError(f"{where}.mix[{i}]: expected [weight, distribution]")
                self.parts.append(
                    (
                        _number(part[0], f"{where}.mix[{i}][0]"),
                        Distribution(part[1], f"{where}.mix[{i}][1]"),
                    )
                )
            if sum(w for w, _ in self.parts) <= 0:
                raise WorkloadError(f"{where}.mix: the weights add up to nothing")
        else:
            raise WorkloadError(
                f"{where}: unknown distribution {kind!r}; use constant, "
                "uniform, exponential, lognormal, pareto or mix"
            )

    def draw(self, rng: random.Random) -> float:
        kind = self.kind
        if kind == "constant":
            x = self.a
        elif kind == "uniform":
            x = rng.uniform(self.a, self.b)
        elif kind == "exponential":
            x = rng.expovariate(1.0 / self.a)
        elif kind == "lognormal":
            x = rng.lognormvariate(self.a, self.b)
        elif kind == "pareto":
            x = self.a * rng.paretovariate(self.b)
        else:
            pick = rng.random() * sum(w for w, _ in self.parts)
            chosen = self.parts[-1][1]
            for weight, part in self.parts:
                pick -= weight
                if pick < 0:
                    chosen = part
                    break
            x = chosen.draw(rng)
        return x if x < self.max else self.max


# --- the workload -------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    duration: float
    leads: int
    schedule: list[tuple[float, int]]  # (from second, operators on line)
    answer_probability: float | list[tuple[float, float]]  # or (second, probability) points
    answer_ring: Distribution
    no_answer_ring: Distribution
    talk: Distribution
    wrap_up: Distribution
    abandon_tolerance: float = 2.0
    tick: float = 0.1
    max_calls_at_once: int = 100
    calls_per_second: float = 10.0
    abandon_rate_cap: float = 3.0

    KEYS = (
        "name",
        "duration",
        "leads",
        "operators",
        "answer_probability",
        "ring_time",
        "talk_time",
        "wrap_up_time",
        "abandon_tolerance",
        "tick",
        "ceilings",
        "abandon_rate_cap_percent",
        "about",
    )

    @classmethod
    def from_dict(cls, data) -> Workload:
        if not isinstance(data, dict):
            raise WorkloadError("a workload is a JSON object (docs/pacing.md)")
        unknown = sorted(set(data) - set(cls.KEYS))
        if unknown:
            raise WorkloadError(
                f"unknown key(s) {', '.join(unknown)}; a workload has {', '.join(cls.KEYS)}"
            )
        for key in ("duration", "operators", "answer_probability", "ring_time", "talk_time"):
            if key not in data:
                raise WorkloadError(f"missing {key!r} (docs/pacing.md describes a workload)")
        schedule = data["operators"]
        if isinstance(schedule, int) and not isinstance(schedule, bool):
            schedule = [{"at": 0, "on_line": schedule}]
        if not isinstance(schedule, list) or not schedule:
            raise WorkloadError(
                'operators: a number, or a schedule [{"at": seconds, "on_line": operators}, ...]'
            )
        steps = []
        for i, step in enumerate(schedule):
            if not isinstance(step, dict) or set(step) != {"at", "on_line"}:
                raise WorkloadError(
                    f'operators[{i}]: expected {{"at": seconds, "on_line": '
                    f"operators}}, got {step!r}"
                )
            on_line = _number(step["on_line"], f"operators[{i}].on_line")
            if on_line != int(on_line):
                raise WorkloadError(f"operators[{i}].on_line: a whole number of operators")
            steps.append((_number(step["at"], f"operators[{i}].at"), int(on_line)))
        steps.sort()
        ring = data["ring_time"]
        if not isinstance(ring, dict) or set(ring) != {"answered", "unanswered"}:
            raise WorkloadError(
                'ring_time: expected {"answered": distribution, "unanswered": distribution}'
            )
        p = _answer_probability(data["answer_probability"])
        ceilings = data.get("ceilings", {})
        if isinstance(ceilings, dict) and "max_in_flight" in ceilings:
            # The key's name before "one word, one meaning": workloads written then still load.
            ceilings = dict(ceilings)
            ceilings.setdefault("max_calls_at_once", ceilings.pop("max_in_flight"))
        if not isinstance(ceilings, dict) or set(ceilings) - {
            "max_calls_at_once",
            "calls_per_second",
        }:
            raise WorkloadError(
                'ceilings: expected {"max_calls_at_once": calls, "calls_per_second": calls}'
            )
        tick = _number(data.get("tick", 0.1), "tick", 0.001)
        leads = _number(data.get("leads", 10**9), "leads")
        return cls(
            name=str(data.get("name", "workload")),
            duration=_number(data["duration"], "duration", 1.0),
            leads=int(leads),
            schedule=steps,
            answer_probability=p,
            answer_ring=Distribution(ring["answered"], "ring_time.answered"),
            no_answer_ring=Distribution(ring["unanswered"], "ring_time.unanswered"),
            talk=Distribution(data["talk_time"], "talk_time"),
            wrap_up=Distribution(data.get("wrap_up_time", {"constant": 0}), "wrap_up_time"),
            abandon_tolerance=_number(data.get("abandon_tolerance", 2.0), "abandon_tolerance"),
            tick=tick,
            max_calls_at_once=int(
                _number(ceilings.get("max_calls_at_once", 100), "ceilings.max_calls_at_once", 1)
            ),
            calls_per_second=_number(
                ceilings.get("calls_per_second", 10.0), "ceilings.calls_per_second", 0.001
            ),
            abandon_rate_cap=_number(
                data.get("abandon_rate_cap_percent", 3.0), "abandon_rate_cap_percent"
            ),
        )

    def answer_probability_at(self, now: float) -> float:
        """The chance that a call started at `now` is answered: the number, or the points of
        a drifting one joined by straight lines (the first before it, the last after it)."""
        points = self.answer_probability
        if not isinstance(points, list):
            return points
        if now <= points[0][0]:
            return points[0][1]
        for (t0, p0), (t1, p1) in itertools.pairwise(points):
            if now <= t1:
                part = (now - t0) / (t1 - t0) if t1 > t0 else 1.0
                return p0 * (1.0 - part) + p1 * part
        return points[-1][1]

    @classmethod
    def load(cls, path: str | Path) -> Workload:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise WorkloadError(f"cannot read the workload {path}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise WorkloadError(
                f"{path} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
        return cls.from_dict(data)


def _answer_probability(value) -> float | list[tuple[float, float]]:
    """A number from 0 to 1, or a drift: [{"at": seconds, "p": probability}, ...]."""
    if not isinstance(value, list):
        p = _number(value, "answer_probability")
        if p > 1:
            raise WorkloadError(f"answer_probability: between 0 and 1, got {p:g}")
        return p
    if not value:
        raise WorkloadError('answer_probability: a number, or [{"at": seconds, "p": 0.3}, ...]')
    points = []
    for i, point in enumerate(value):
        if not isinstance(point, dict) or set(point) != {"at", "p"}:
            raise WorkloadError(
                f'answer_probability[{i}]: expected {{"at": seconds, "p": probability}}, '
                f"got {point!r}"
            )
        p = _number(point["p"], f"answer_probability[{i}].p")
        if p > 1:
            raise WorkloadError(f"answer_probability[{i}].p: between 0 and 1, got {p:g}")
        points.append((_number(point["at"], f"answer_probability[{i}].at"), p))
    points.sort()
    return points


def example_workloads() -> list[Path]:
    """The workloads that ship with the project (engine/sim/workloads/*.json)."""
    return sorted(WORKLOADS.glob("*.json"))


# --- the simulation -----------------------------------------------------------------------

# Event kinds, in the order they run when due at the same instant.
_SCHEDULE, _FREE, _WRAP_UP, _RING_END, _GIVE_UP, _TICK = range(6)


class _Operator:
    __slots__ = ("busy", "free_at", "leaving", "on_line_at", "wrapping_up")

    def __init__(self, now: float):
        self.busy = False
        self.wrapping_up = False
        self.free_at = now
        self.leaving = False
        self.on_line_at = now


def pacer_class(compiled: bool = True) -> type[Pacer]:
    """The engine's pacer: the Cython one as the engine loads it (engine/compiled.py), or
    with `compiled` False the twin."""
    if compiled:
        return load("engine._pacer", "engine.pacer").Pacer
    return Pacer


def simulate(
    workload: Workload, mode: str, seed: int = 0, multiplier: float = 1.0, pacer: Any = None
) -> dict[str, Any]:
    """Run the workload with a pacer in `mode`; the figures of `autocall simulate`."""
    if pacer is None:
        pacer = pacer_class()(
            mode,
            multiplier,
            workload.max_calls_at_once,
            workload.calls_per_second,
            0.0,
            workload.abandon_rate_cap,
        )
    run = _Run(workload, pacer, seed)
    run.run()
    answered, abandoned = run.answered, run.abandoned
    reached = answered - abandoned
    on_line_seconds, busy_seconds = run.on_line_seconds, run.busy_seconds
    hours = on_line_seconds / 3600.0
    return {
        "workload": workload.name,
        "mode": mode,
        "multiplier": multiplier,
        "seed": seed,
        "attempts": run.attempts,
        "answered": answered,
        "abandoned": abandoned,
        "abandon_rate": round(abandoned / answered, 5) if answered else 0.0,
        "occupancy": round(busy_seconds / on_line_seconds, 5) if on_line_seconds else 0.0,
        "talk_share": round(run.talk_seconds / on_line_seconds, 5) if on_line_seconds else 0.0,
        "operator_idle_seconds": round(on_line_seconds - busy_seconds, 1),
        "on_line_seconds": round(on_line_seconds, 1),
        "leads_reached_per_operator_hour": round(reached / hours, 3) if hours else 0.0,
        "peak_in_flight": run.peak,
    }


class _Run:
    """One run of `simulate`: the call centre's state, the queue of events due, and one
    handler for each kind of event (`_on_tick`, `_on_ring_end`, ...), as the demo PBX
    (engine/sim/pbx.py) has one for each kind of request."""

    def __init__(self, workload: Workload, pacer: Any, seed: int):
        self.workload = workload
        self.pacer = pacer
        streams = random.Random(seed)
        self.rng_answer, self.rng_ring, self.rng_talk, self.rng_wrap = (
            random.Random(streams.getrandbits(64)) for _ in range(4)
        )
        #: (when, kind, order, payload): by time, then kind, then as they were added.
        self.events: list[tuple[float, int, int, Any]] = []
        self.order = 0
        self.operators: list[_Operator] = []  # on line (or leaving when their call ends)
        self.free: list[_Operator] = []  # by the time they became free: the longest-waiting first
        self.waiting: dict[int, float] = {}  # answered customers waiting for an operator: since
        self.in_flight = self.peak = 0
        self.leaving = 0  # busy operators who go off line when their call ends
        self.wrapping_up = 0  # busy operators whose talk is over (leaving ones included)
        self.frees_told = getattr(pacer, "told_frees", False) is True  # bench/pacing.py
        self.leads_left = workload.leads
        self.attempts = self.answered = self.abandoned = 0
        self.on_line_seconds = 0.0
        self.busy_seconds = 0.0
        self.talk_seconds = 0.0
        self.end = workload.duration
        for when, count in workload.schedule:
            self.at(when, _SCHEDULE, count)
        self.at(0.0, _TICK)

    def at(self, when: float, kind: int, payload: Any = None) -> None:
        self.order += 1
        heapq.heappush(self.events, (when, kind, self.order, payload))

    def run(self) -> None:
        """Handle the events in their order until the workload's end."""
        handlers: tuple[Callable[[float, Any], None], ...] = (
            self._on_schedule,
            self._on_free,
            self._on_wrap_up,
            self._on_ring_end,
            self._on_give_up,
            self._on_tick,
        )  # by kind
        events, end = self.events, self.end
        while events:
            now, kind, _, payload = heapq.heappop(events)
            if now > end:
                break
            handlers[kind](now, payload)
        for op in self.operators:
            self.on_line_seconds += end - op.on_line_at

    # --- the events -----------------------------------------------------------------------

    def _on_tick(self, now: float, payload: None) -> None:
        """The pacer is asked how many calls to start, as the engine asks it each tick."""
        if self.leads_left > 0:
            count = self._calls_to_start(now)
            for _ in range(count):
                self._dial(now)
        self.at(now + self.workload.tick, _TICK)

    def _on_ring_end(self, now: float, payload: tuple[bool, float]) -> None:
        """A call stops ringing: unanswered, or answered and handed to the operator who has
        waited longest; with nobody free the customer waits (or, with no tolerance, is
        abandoned)."""
        self.in_flight -= 1
        answered, ring = payload
        self.pacer.ringing_ended(answered, ring, now)
        if not answered:
            return
        self.answered += 1
        if self.free:
            self._hand_over(self.free.pop(0), now)
        elif self.workload.abandon_tolerance > 0:
            self.order += 1
            self.waiting[self.order] = now
            self.at(now + self.workload.abandon_tolerance, _GIVE_UP, self.order)
        else:
            self._abandon(now)

    def _on_give_up(self, now: float, waiting: int) -> None:
        """An answered customer's tolerance is over: abandoned, unless taken meanwhile."""
        if self.waiting.pop(waiting, None) is not None:
            self._abandon(now)

    def _on_wrap_up(self, now: float, payload: tuple[_Operator, float]) -> None:
        """An operator's talk is over: wrap-up until free."""
        op, free_at = payload
        if op.busy and op.free_at == free_at:  # still on that call
            op.wrapping_up = True
            self.wrapping_up += 1

    def _on_free(self, now: float, payload: tuple[_Operator, float, float]) -> None:
        """An operator's handle time is over: the pacer hears it, the operator is free."""
        op, handle, wrap = payload
        self.pacer.handled(handle, now, wrap)
        self._operator_free(op, now)

    def _on_schedule(self, now: float, target: int) -> None:
        """Operators come on line, or go off (the free first, the busy when their call
        ends), to `target` on line."""
        operators = self.operators
        staying = [op for op in operators if not op.leaving]
        while len(staying) < target:  # come on line (or stay, when about to leave)
            back = next((op for op in operators if op.leaving), None)
            if back is not None:
                back.leaving = False
                self.leaving -= 1
                staying.append(back)
                continue
            op = _Operator(now)
            operators.append(op)
            staying.append(op)
            self._operator_free(op, now)
        while len(staying) > target:  # the free leave first, then the busy when done
            op = next((o for o in reversed(staying) if not o.busy), staying[-1])
            staying.remove(op)
            if op.busy:
                op.leaving = True
                self.leaving += 1
            else:
                self.free.remove(op)
                self._go_off_line(op, now)

    # --- what they do ---------------------------------------------------------------------

    def _calls_to_start(self, now: float) -> int:
        """The pacer's answer, told what the engine would see: operators free, on line (one
        leaving is off line already) and in wrap-up; no more than the leads left."""
        operators, pacer = self.operators, self.pacer
        on_line = len(operators) - self.leaving
        wrapping = self.wrapping_up
        if self.leaving:  # those leaving are off line already, wrapping up or not
            wrapping -= sum(1 for op in operators if op.leaving and op.wrapping_up)
        if self.frees_told:  # what no engine knows: when each busy operator is free again
            pacer.frees_due = [op.free_at for op in operators if op.busy and not op.leaving]
        count: int = pacer.calls_to_start(len(self.free), self.in_flight, now, on_line, wrapping)
        if count > self.leads_left:
            pacer.give_back(count - self.leads_left, now)
            count = self.leads_left
        return count

    def _dial(self, now: float) -> None:
        """A call starts: it will be answered after a ring, or stop ringing unanswered."""
        workload = self.workload
        self.leads_left -= 1
        self.in_flight += 1
        self.attempts += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight
        if self.rng_answer.random() < workload.answer_probability_at(now):
            ring = workload.answer_ring.draw(self.rng_ring)
            self.at(now + ring, _RING_END, (True, ring))
        else:
            ring = workload.no_answer_ring.draw(self.rng_ring)
            self.at(now + ring, _RING_END, (False, ring))

    def _abandon(self, now: float) -> None:
        self.abandoned += 1
        self.pacer.abandoned(now)

    def _go_off_line(self, op: _Operator, now: float) -> None:
        self.on_line_seconds += now - op.on_line_at
        self.operators.remove(op)

    def _hand_over(self, op: _Operator, now: float) -> None:
        """The operator takes an answered customer."""
        workload, end = self.workload, self.end
        op.busy = True
        talk = workload.talk.draw(self.rng_talk)
        handle = talk + workload.wrap_up.draw(self.rng_wrap)
        # The handle time counts from the hand-over; it ends within the run or is cut there.
        self.busy_seconds += min(handle, max(0.0, end - now))
        self.talk_seconds += min(talk, max(0.0, end - now))
        op.free_at = now + handle
        if handle > talk:  # a wrap-up to go into (none: straight to free)
            self.at(now + talk, _WRAP_UP, (op, op.free_at))
        self.at(now + handle, _FREE, (op, handle, handle - talk))

    def _operator_free(self, op: _Operator, now: float) -> None:
        if op.wrapping_up:
            op.wrapping_up = False
            self.wrapping_up -= 1
        op.busy = False
        if op.leaving:
            self.leaving -= 1
            self._go_off_line(op, now)
            return
        if self.waiting:  # the customer waiting longest (dicts keep their order)
            del self.waiting[next(iter(self.waiting))]
            self._hand_over(op, now)
            return
        self.free.append(op)
