"""bench/engine.py runs end to end: two tenants for 3 s, then with two campaigns each,
in two turns. A functional check of the benchmark and its JSON line, never a timing one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_compares_campaigns_in_turns():
    assert shutil.which("sipp"), "SIPp is not installed: ./dev test installs Debian's sip-tester"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine.py"),
            *("--tenants", "2", "--seconds", "3", "--campaigns", "2", "--turns", "2"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["bench"] == "engine"
    assert [step["tenants"] for step in result["steps"]] == [2]
    campaigns = result["campaign_run"]
    assert campaigns["campaigns_each"] == 2
    assert len(campaigns["turns"]) == 2
    assert all(t["one_campaign"] > 0 and t["campaigns"] > 0 for t in campaigns["turns"])
    assert campaigns["attempts"] > 0
    assert result["with_campaigns"]["dialed"] == result["with_campaigns"]["leads"]
    assert set(result["targets"]) == {
        "attempts_per_second_300",
        "new_lead_to_invite_p99_under_200ms",
        "campaigns_at_least_0_8_of_one",
    }
