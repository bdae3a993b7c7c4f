"""bench/consoles.py stays runnable: a small run with five consoles against a real gunicorn
web process. A functional check of the benchmark, never a timing one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_consoles_benchmark_opens_them_times_the_sign_in_page_and_ends_with_json():
    run = subprocess.run(
        [sys.executable, "bench/consoles.py", "--consoles", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["bench"] == "consoles" and result["consoles"] == 5
    assert (result["all_consoles"]["opened"], result["all_consoles"]["popped"]) == (5, 5)
    page = result["sign_in_page"]
    assert page["no_consoles"]["failed"] == page["consoles_open"]["failed"] == 0
    assert page["p50_ratio"] is not None and result["targets"]["pages_answer"] is True


def test_the_consoles_benchmark_is_bounded():
    run = subprocess.run(
        [sys.executable, "bench/consoles.py", "--consoles", "100000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "from 1 to 5000" in run.stderr
