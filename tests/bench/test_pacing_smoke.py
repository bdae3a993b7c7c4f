"""bench/pacing.py runs end to end on one short workload and one seed: a functional check of
the benchmark and its JSON line, never a timing one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_prints_its_figures_as_json():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pacing.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["benchmark"] == "pacing" and result["mode"] == "smoke"
    assert not {"workloads", "targets", "decision_us", "all_met"} - result.keys()
    [(name, workload)] = result["workloads"].items()
    assert name == "team-10-high-answer" and workload["team"] == 10
    modes = workload["modes"]
    assert set(modes) == {"progressive", "adaptive", "predictive", "best fixed", "told frees"}
    assert modes["progressive"]["abandoned"] == 0
    for row in modes.values():
        assert row["answered"] > 0 and 0 < row["occupancy_mean"] <= 1
    # the best fixed multiplier in hindsight: on the grid, at or over 1, under the cap
    k = modes["best fixed"]["multiplier"]
    assert k >= 1.0 and round(k / 0.05, 6) == round(k / 0.05)
    assert modes["best fixed"]["abandon_rate_max"] <= 0.03
    assert set(result["targets"][name]) == {
        "abandon_at_most_3pct_every_seed",
        "occupancy_at_least_best_fixed",
    }
    assert "gap_closed" in workload
    assert set(result["decision_us"]) == {"cython", "python", "ratio", "under_50us"}
    assert "predictive decision: Cython" in run.stdout
