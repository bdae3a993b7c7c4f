"""bench/pages.py runs end to end on a small tenant (500 leads), on PostgreSQL and SQLite:
every page answers 200 for both tenants and the JSON line has its figures. A functional
check of the benchmark, never a timing one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import pages  # noqa: E402  (bench/pages.py)


def test_smoke_run_prints_every_page_as_json(capsys):
    args = ["--leads", "500", "--attempts", "1000", "--operators", "5", "--do-not-call", "20"]
    assert pages.main([*args, "--reps", "2", "--databases", "postgresql,sqlite"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])

    assert result["benchmark"] == "pages" and result["leads"] == 500
    assert set(result["databases"]) == {"postgresql", "sqlite"}
    assert set(result["targets"]) == {"every_page_p95_under_100ms", "pages_over", "slowest"}
    names = {name for name, _, _ in pages.pages(pages.Tenant(1, "", "", 1, 1, 1, 1, "", "", "", 1))}
    for figures in result["databases"].values():
        assert set(figures["pages"]) == names
        for page in figures["pages"].values():
            assert page["p50_ms"] > 0 and page["peer_p50_ms"] > 0 and page["statements"] > 0
    assert any("page" in line and "p95 ms" in line for line in lines)  # the table


def test_the_history_is_consistent():
    import random

    counts = pages._history(random.Random(1), 300, 700)
    assert sum(counts) == 700 and max(counts) <= pages.MAX_ATTEMPTS
    leads, attempts = pages._rows(
        1, 3, 10, counts, [7], random.Random(1), pages.datetime.now(pages.UTC), as_json=True
    )
    assert len(leads) == 300 and len(attempts) == 700
    for lead in leads:
        row = dict(zip(pages.LEAD_COLUMNS, lead, strict=True))
        status, tries, last_outcome = row["status"], row["attempts"], row["last_outcome"]
        assert (tries == 0) == (last_outcome is None)
        if status == "reached":
            assert last_outcome == "answered"
