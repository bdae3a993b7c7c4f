"""Predictive pacing against the best fixed multiplier chosen in hindsight, per workload, and
the cost of one pacing decision.

    .venv/bin/python bench/pacing.py             # every workload, seeds 1-10: a few minutes
    .venv/bin/python bench/pacing.py --quick     # seeds 1-5 (the figures move a little)
    .venv/bin/python bench/pacing.py --jobs 1    # one process (2 by default)
    .venv/bin/python bench/pacing.py --smoke     # one short workload, one seed: a functional check

Each example workload (engine/sim/workloads/*.json) runs in the call-centre simulator
(engine/sim/callcentre.py) with each seed, paced by the engine's compiled pacer
(engine/_pacer.pyx): progressive, adaptive, predictive, and the multiplier k for k = 1.00,
1.05, 1.10, ...: the *best fixed multiplier in hindsight* is the one with the highest
occupancy whose worst seed stays at or under the 3% cap (occupancy rises with k; the sweep
bisects on the grid for the largest k under the cap, then looks a few steps further up, in
case a noisy seed made the boundary look lower than it is). The table shows per workload and
mode the worst (highest) abandon rate over the seeds and the mean and lowest occupancy.

One more row per workload is a yardstick, not a mode: "told frees", the predictive twin told
at each decision when every busy operator will be free again (the simulator knows; no dialer
does), in place of its estimate. The bench prints which share of the gap between the best
fixed multiplier and the yardstick predictive closes (negative: predictive is below the fixed
multiplier).

Targets (issue 19, docs/pacing.md), reported as met or not, never asserted: on every workload
predictive keeps the abandon rate at or under 3% with every seed, and reaches at least the
best fixed multiplier's occupancy (mean over the seeds); a decision takes under 50
microseconds compiled. The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import pacer as py_pacer
from engine.sim.callcentre import Workload, example_workloads, simulate

try:
    from engine import _pacer as c_pacer
except ImportError:  # not built: run `.venv/bin/python setup.py build_ext --inplace`
    c_pacer = None

CAP = 0.03
TOLD_FREES = "told frees"
BEST_FIXED = "best fixed"
#: The multiplier's grid: 1.00, 1.05, ... up to K_MAX; steps looked at above the bisected
#: boundary.
K_STEP, K_MAX, K_LOOK_ABOVE = 0.05, 30.0, 3


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


def team_size(workload: Workload) -> int:
    return max(count for _, count in workload.schedule)


def summary(runs: list[dict]) -> dict:
    return {
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


def fixed_runs(workload: Workload, k: float, seeds: list[int]) -> list[dict] | None:
    """The multiplier k over the seeds; None as soon as a seed goes over the cap."""
    runs = []
    for seed in seeds:
        run = simulate(workload, "multiplier", seed, k)
        if run["abandon_rate"] > CAP:
            return None
        runs.append(run)
    return runs


def best_fixed(workload: Workload, seeds: list[int]) -> tuple[float, list[dict]]:
    """The multiplier on the grid with the highest occupancy whose worst seed stays at or
    under the cap, and its runs."""
    grid = [round(1.0 + i * K_STEP, 2) for i in range(int((K_MAX - 1.0) / K_STEP) + 1)]
    found: dict[int, list[dict] | None] = {}

    def feasible(i: int) -> bool:
        if i not in found:
            found[i] = fixed_runs(workload, grid[i], seeds)
        return found[i] is not None

    lo, hi = 0, len(grid) - 1  # multiplier 1.0 never abandons more than progressive
    if not feasible(lo):
        return grid[0], fixed_runs(workload, grid[0], seeds[:1]) or []
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if feasible(mid):
            lo = mid
        else:
            hi = mid - 1
    for i in range(lo + 1, min(lo + 1 + K_LOOK_ABOVE, len(grid))):
        feasible(i)
    candidates = [(i, runs) for i, runs in found.items() if runs is not None]
    i, runs = max(candidates, key=lambda c: sum(r["occupancy"] for r in c[1]))
    return grid[i], runs


def run_workload(job: tuple[Path, list[int], bool]) -> tuple[str, dict]:
    path, seeds, smoke = job
    workload = Workload.load(path)
    if smoke:
        workload.duration = min(workload.duration, 600.0)
    rows = {}
    for mode in ("progressive", "adaptive", "predictive"):
        rows[mode] = summary([simulate(workload, mode, seed) for seed in seeds])
    k, runs = best_fixed(workload, seeds)
    rows[BEST_FIXED] = summary(runs) | {"multiplier": k}
    args = ("predictive", 1.0, workload.max_calls_at_once, workload.calls_per_second, 0.0)
    told = [
        simulate(workload, "predictive", seed, pacer=ToldFrees(*args, workload.abandon_rate_cap))
        for seed in seeds
    ]
    rows[TOLD_FREES] = summary(told)
    fixed, ours, yard = (rows[m]["occupancy_mean"] for m in (BEST_FIXED, "predictive", TOLD_FREES))
    gap = round((ours - fixed) / (yard - fixed), 3) if yard - fixed > 1e-4 else None
    return path.stem, {"team": team_size(workload), "modes": rows, "gap_closed": gap}


def judge(results: dict) -> dict:
    """The targets, per workload."""
    per_workload = {}
    for name, result in results.items():
        rows = result["modes"]
        ours = rows["predictive"]
        per_workload[name] = {
            "abandon_at_most_3pct_every_seed": ours["abandon_rate_max"] <= CAP,
            "occupancy_at_least_best_fixed": ours["occupancy_mean"]
            >= rows[BEST_FIXED]["occupancy_mean"],
        }
    return per_workload


def time_decision(module, rounds: int) -> float:
    """Microseconds per predictive decision, the pacer warmed up with a learned state."""
    pacer = module.Pacer("predictive", 1.0, 10_000, 1e9, 0.0, 3.0)
    rng = random.Random(1)
    for i in range(500):
        pacer.ringing_ended(rng.random() < 0.3, rng.uniform(2, 30), i * 0.1)
        pacer.handled(rng.uniform(30, 300), i * 0.1, rng.uniform(5, 20))
    now = 50.0
    for _ in range(80):  # fill the cohorts: one a second
        now += 1.0
        pacer.calls_to_start(40, 200, now, 50, 5)
    free = [rng.randint(0, 20) for _ in range(1024)]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for i in range(rounds):
            pacer.calls_to_start(free[i & 1023], 150, now + i * 1e-6, 50, 5)
        best = min(best, time.perf_counter() - start)
    return best / rounds * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N per workload")
    parser.add_argument("--quick", action="store_true", help="seeds 1-5")
    parser.add_argument("--jobs", type=int, default=2, help="processes (workloads in parallel)")
    parser.add_argument("--only", help="the workloads whose name contains this")
    parser.add_argument("--smoke", action="store_true", help="one workload, one seed, short")
    args = parser.parse_args(argv)
    if c_pacer is None:
        print(
            "the Cython pacer is not built: .venv/bin/python setup.py build_ext --inplace",
            file=sys.stderr,
        )
        return 2
    workloads = example_workloads()
    seeds = list(range(1, (5 if args.quick else args.seeds) + 1))
    if args.only:
        workloads = [p for p in workloads if args.only in p.stem]
    if args.smoke:
        workloads = [p for p in workloads if p.stem == "team-10-high-answer"]
        seeds = [1]
    started = time.perf_counter()
    jobs = [(path, seeds, args.smoke) for path in workloads]
    if args.jobs > 1 and len(jobs) > 1:
        with Pool(args.jobs) as pool:
            results = dict(pool.map(run_workload, jobs, chunksize=1))
    else:
        results = dict(map(run_workload, jobs))
    simulated = time.perf_counter() - started

    print(
        f"Pacing on {len(workloads)} workloads, seeds {seeds[0]}-{seeds[-1]} "
        "(abandon: worst seed; occupancy (talk + wrap-up): mean, lowest; talk alone: mean)"
    )
    print(
        f"{'workload':22} {'mode':18} {'abandon max':>11} {'occupancy':>10} {'lowest':>7} "
        f"{'talk':>6} {'reached/op-h':>12}"
    )
    for name, result in results.items():
        for mode, row in result["modes"].items():
            flag = "" if row["abandon_rate_max"] <= CAP else "  over the cap"
            shown = f"{mode} {row['multiplier']:.2f}" if mode == BEST_FIXED else mode
            print(
                f"{name:22} {shown:18} {row['abandon_rate_max'] * 100:10.2f}% "
                f"{row['occupancy_mean'] * 100:9.1f}% {row['occupancy_min'] * 100:6.1f}% "
                f"{row['talk_share_mean'] * 100:5.1f}% "
                f"{row['leads_reached_per_operator_hour']:12.1f}{flag}"
            )
        gap = result["gap_closed"]
        shown_gap = "no gap" if gap is None else f"{gap * 100:.0f}%"
        print(f"{name:22} {'gap closed':18} {shown_gap:>11}  (best fixed -> told frees)")
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
    print(f"simulated in {simulated:.0f} s; all targets " + ("met" if all_met else "NOT met"))
    print(
        json.dumps(
            {
                "benchmark": "pacing",
                "mode": "smoke" if args.smoke else ("quick" if args.quick else "full"),
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
