"""Pacing modes compared on the example workloads, and the cost of one pacing decision.

    .venv/bin/python bench/pacing.py             # every workload, seeds 1-5: about a minute
    .venv/bin/python bench/pacing.py --seeds 3   # fewer seeds
    .venv/bin/python bench/pacing.py --smoke     # one short workload, one seed: a functional check

Each example workload (engine/sim/workloads/*.json) runs in the call-centre simulator
(engine/sim/callcentre.py) with each seed for: progressive, multiplier 1.2 / 1.5 / 2.0, adaptive
and predictive, paced by the engine's compiled pacer (engine/_pacer.pyx). The table shows per
workload and mode the worst (highest) abandon rate over the seeds and the mean and lowest
occupancy. Then the decision (`calls_to_start`) is timed for the Cython pacer and its pure
twin, in predictive mode with a learned state and a full set of cohorts (its dearest case).

One more row per workload is a yardstick, not a mode: "told frees", the predictive twin told
at each decision when every busy operator will be free again (the simulator knows; no dialer
does), in place of its estimate from handle and wrap-up times. It shows what better
predictions of the operators could buy at most with this model of the answers; the targets
do not look at it.

Targets (docs/pacing.md), reported as met or not, never asserted: predictive keeps the abandon
rate at or under 3% with every seed on every workload; its occupancy is higher than that of
every other mode that also stays at or under 3%; on teams of 10 or more its occupancy is at
least 85%; on a team of 3 it beats progressive with abandon under 3%; a decision takes under
50 microseconds. The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import pacer as py_pacer
from engine.sim.callcentre import Workload, example_workloads, simulate

try:
    from engine import _pacer as c_pacer
except ImportError:  # not built: run `.venv/bin/python setup.py build_ext --inplace`
    c_pacer = None

MODES = [
    ("progressive", 1.0),
    ("multiplier", 1.2),
    ("multiplier", 1.5),
    ("multiplier", 2.0),
    ("adaptive", 1.0),
    ("predictive", 1.0),
]
CAP = 0.03
TOLD_FREES = "told frees"


class ToldFrees(py_pacer.Pacer):
    """The predictive twin, told by the simulator when each busy operator is free again
    (`frees_due`, simulated seconds): the operators there for the answers to the calls started
    now are the free ones and the busy ones due within a ring time, known for sure."""

    told_frees = True

    def __init__(self, *args):
        super().__init__(*args)
        self.frees_due: list[float] = []

    def _supply(self, free, busy, wrapping_up, ring, now):
        return float(free + sum(1 for due in self.frees_due if due <= now + ring)), 0.0


def label(mode: str, multiplier: float) -> str:
    return f"multiplier {multiplier:g}" if mode == "multiplier" else mode


def team_size(workload: Workload) -> int:
    return max(count for _, count in workload.schedule)


def run_modes(workloads: list[Path], seeds: list[int], smoke: bool) -> dict:
    results: dict = {}
    for path in workloads:
        workload = Workload.load(path)
        if smoke:
            workload.duration = min(workload.duration, 600.0)
        rows = {}
        told = [(TOLD_FREES, "predictive", 1.0)] if not smoke else []
        for key, mode, multiplier in [(label(m, x), m, x) for m, x in MODES] + told:
            if key == TOLD_FREES:
                runs = [
                    simulate(
                        workload,
                        mode,
                        seed,
                        pacer=ToldFrees(
                            mode,
                            1.0,
                            workload.max_calls_at_once,
                            workload.calls_per_second,
                            0.0,
                            workload.abandon_rate_cap,
                        ),
                    )
                    for seed in seeds
                ]
            else:
                runs = [simulate(workload, mode, seed, multiplier) for seed in seeds]
            rows[key] = {
                "abandon_rate_max": max(r["abandon_rate"] for r in runs),
                "abandon_rate_mean": round(sum(r["abandon_rate"] for r in runs) / len(runs), 5),
                "occupancy_mean": round(sum(r["occupancy"] for r in runs) / len(runs), 4),
                "occupancy_min": min(r["occupancy"] for r in runs),
                "talk_share_mean": round(sum(r["talk_share"] for r in runs) / len(runs), 4),
                "leads_reached_per_operator_hour": round(
                    sum(r["leads_reached_per_operator_hour"] for r in runs) / len(runs), 2
                ),
                "answered": sum(r["answered"] for r in runs),
                "abandoned": sum(r["abandoned"] for r in runs),
            }
        results[path.stem] = {"team": team_size(workload), "modes": rows}
    return results


def judge(results: dict) -> dict:
    """The targets, per workload and in all."""
    per_workload = {}
    for name, result in results.items():
        rows = result["modes"]
        ours = rows["predictive"]
        under_cap = ours["abandon_rate_max"] <= CAP
        others = [
            r["occupancy_mean"]
            for key, r in rows.items()
            if key not in ("predictive", TOLD_FREES) and r["abandon_rate_max"] <= CAP
        ]
        best_other = max(others) if others else 0.0
        checks = {
            "abandon_at_most_3pct_every_seed": under_cap,
            "occupancy_above_every_mode_under_cap": ours["occupancy_mean"] > best_other,
        }
        if result["team"] >= 10:
            checks["occupancy_at_least_85pct"] = ours["occupancy_min"] >= 0.85
        if result["team"] <= 3:
            checks["beats_progressive"] = (
                ours["occupancy_mean"] > rows["progressive"]["occupancy_mean"] and under_cap
            )
        per_workload[name] = checks
    return per_workload


def time_decision(module, rounds: int) -> float:
    """Microseconds per predictive decision, the pacer warmed up with a learned state."""
    pacer = module.Pacer("predictive", 1.0, 10_000, 1e9, 0.0, 3.0)
    rng = random.Random(1)
    for i in range(500):
        pacer.ringing_ended(rng.random() < 0.3, rng.uniform(2, 30), i * 0.1)
        pacer.handled(rng.uniform(30, 300), i * 0.1)
    now = 50.0
    for _ in range(80):  # fill the cohorts: one a second
        now += 1.0
        pacer.calls_to_start(40, 200, now, 50)
    free = [rng.randint(0, 20) for _ in range(1024)]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for i in range(rounds):
            pacer.calls_to_start(free[i & 1023], 150, now + i * 1e-6, 50)
        best = min(best, time.perf_counter() - start)
    return best / rounds * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N per workload")
    parser.add_argument("--smoke", action="store_true", help="one workload, one seed, short")
    args = parser.parse_args(argv)
    if c_pacer is None:
        print(
            "the Cython pacer is not built: .venv/bin/python setup.py build_ext --inplace",
            file=sys.stderr,
        )
        return 2
    workloads = example_workloads()
    seeds = list(range(1, args.seeds + 1))
    if args.smoke:
        workloads = [p for p in workloads if p.stem == "team-10-high-answer"]
        seeds = [1]
    started = time.perf_counter()
    results = run_modes(workloads, seeds, args.smoke)
    simulated = time.perf_counter() - started

    print(
        f"Pacing modes on {len(workloads)} workloads, seeds {seeds[0]}-{seeds[-1]} "
        "(abandon: worst seed; occupancy (talk + wrap-up): mean, lowest; "
        "talk alone: mean)"
    )
    print(
        f"{'workload':24} {'mode':16} {'abandon max':>11} {'occupancy':>10} {'lowest':>7} "
        f"{'talk':>6} {'reached/op-h':>12}"
    )
    for name, result in results.items():
        for mode, row in result["modes"].items():
            flag = "" if row["abandon_rate_max"] <= CAP else "  over the cap"
            print(
                f"{name:24} {mode:16} {row['abandon_rate_max'] * 100:10.2f}% "
                f"{row['occupancy_mean'] * 100:9.1f}% {row['occupancy_min'] * 100:6.1f}% "
                f"{row['talk_share_mean'] * 100:5.1f}% "
                f"{row['leads_reached_per_operator_hour']:12.1f}{flag}"
            )
    targets = judge(results)
    for name, checks in targets.items():
        missed = [key for key, ok in checks.items() if not ok]
        print(f"targets {name}: " + ("all met" if not missed else "NOT met: " + ", ".join(missed)))

    rounds = 2_000 if args.smoke else 50_000
    c_us = time_decision(c_pacer, rounds)
    py_us = time_decision(py_pacer, rounds // 10)
    print(
        f"predictive decision: Cython {c_us:.2f} us, pure twin {py_us:.2f} us "
        f"(twin / Cython = {py_us / c_us:.1f}x); target under 50 us"
    )
    all_met = all(all(c.values()) for c in targets.values()) and c_us < 50.0
    print(
        json.dumps(
            {
                "benchmark": "pacing",
                "mode": "smoke" if args.smoke else "full",
                "seeds": seeds,
                "simulated_seconds": round(simulated, 1),
                "workloads": results,
                "targets": targets,
                "decision_us": {
                    "cython": round(c_us, 3),
                    "python": round(py_us, 3),
                    "ratio": round(py_us / c_us, 1),
                    "under_50us": c_us < 50.0,
                },
                "all_met": all_met,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
