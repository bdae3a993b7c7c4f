"""bench/reports.py runs end to end on a tiny tenant (3,000 CDRs) in PostgreSQL: every report
answers 200, the roll-up runs, and the JSON line has its figures. A functional check of the
benchmark, never a timing one."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import reports  # noqa: E402  (bench/reports.py)


def test_smoke_run_prints_every_report_as_json(capsys):
    args = ["--attempts", "3000", "--days", "20", "--operators", "4", "--reps", "2"]
    assert reports.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["benchmark"] == "reports" and result["attempts"] == 3000
    names = {name for name, _ in reports.reports({"now": datetime.now(UTC), "operator_id": 1}, 20)}
    assert set(result["reports"]) == names
    for figures in result["reports"].values():
        assert figures["p50_ms"] > 0 and figures["p95_ms"] >= figures["p50_ms"]
    assert result["rollup_seconds"] > 0 and result["summary_raw_ms"] > 0
    assert set(result["targets"]) == {"every_target_met_p95"}
    assert any(line.startswith("report") and "p95 ms" in line for line in lines)  # the table


def test_the_generated_leads_follow_their_attempts():
    now = datetime.now(UTC)
    made = list(reports.generate(1, 3, 10, 2000, 10, [7, 8], now))
    attempts = [line for _lead, lines in made for line in lines]
    assert 1900 <= len(attempts) <= 2000
    assert made == list(reports.generate(1, 3, 10, 2000, 10, [7, 8], now))  # the two passes agree
    for lead, lines in made:
        fields = lead.rstrip("\n").split("\t")
        status, tried = fields[7], int(fields[8])
        assert tried == len(lines) <= reports.MAX_ATTEMPTS
        outcomes = [line.split("\t")[6] for line in lines]
        if status == "reached":
            assert outcomes[-1] == "answered" and "answered" not in outcomes[:-1]
        elif status == "exhausted":
            assert tried == reports.MAX_ATTEMPTS and "answered" not in outcomes
