"""bench/console.py stays runnable: a small run with one operator and two leads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_benchmark_runs_and_ends_with_one_json_line():
    run = subprocess.run(
        [sys.executable, "bench/console.py", "--operators", "1", "--leads", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["bench"] == "console" and result["cards"] == 2
    assert result["refer_to_card_p50_ms"] is not None
