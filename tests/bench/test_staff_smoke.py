"""bench/staff.py runs end to end on a few tenants: every staff page answers 200 and the JSON
line has its figures. A functional check of the benchmark, never a timing one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import staff  # noqa: E402  (bench/staff.py)


def test_smoke_run_prints_every_page_as_json(capsys):
    assert staff.main(["--tenants", "5", "--attempts", "100", "--reps", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == "staff" and result["tenants"] == 5
    assert result["attempts"] == 500  # every tenant got its attempts
    assert len(result["pages"]) == 4
    for figures in result["pages"].values():
        assert figures["p50_ms"] > 0 and figures["p95_ms"] >= figures["p50_ms"]
    assert any(line.startswith("page") and "p95 ms" in line for line in lines)
    billing = [label for label in result["pages"] if label.startswith("billing")]
    assert set(result["raw"]) == set(result["raw_over_rolled"]) == set(billing)
    assert result["rollup_seconds"] >= 0
