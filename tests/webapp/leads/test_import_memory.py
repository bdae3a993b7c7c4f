"""A 48 MB CSV file costs a web worker (and the import job) no more memory than a small one:
the upload is copied to disk a megabyte at a time, the mapping page reads the first rows, the
job reads the rows a batch at a time. Measured as the peak resident memory of a child
process doing the work through the real views and a real RQ worker (import_memory_child.py);
no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BOUNDARY = "autocall-test-boundary-7d1f"
#: What one web worker may use at its peak with the large file (the issue's bound), and how
#: much more than with a small file: reading the file whole would take several times its size.
PEAK_MB = 200
GROWTH_MB = 40


def write_large_upload(path: Path, megabytes: int = 48) -> int:
    """A multipart body holding a CSV file of about `megabytes` MB: 24,000 rows with a 2 KB
    note each; row 3 and the last row have a bad number; row 1,002's CRM id repeats row 2's
    (two batches apart). Returns the number of data rows."""
    note = "n" * 2000
    rows = megabytes * 1024 * 1024 // (len(note) + 40)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="large.csv"\r\nContent-Type: text/csv\r\n\r\n'
        )
        out.write("phone,name,crm id,notes\r\n")
        for n in range(rows):
            phone = "12" if n in (1, rows - 1) else f"+1212{n:07d}"
            crm = "C-0" if n == 1000 else f"C-{n}"
            out.write(f"{phone},Customer {n},{crm},{note}\r\n")
        out.write(f"\r\n--{BOUNDARY}--\r\n")
    return rows


def test_a_large_file_is_uploaded_mapped_and_imported_in_bounded_memory(tmp_path):
    body = tmp_path / "upload.body"
    rows = write_large_upload(body)
    assert body.stat().st_size > 45 * 1024 * 1024
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.webapp.leads.import_memory_child",
            str(tmp_path),
            str(body),
            BOUNDARY,
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    peaks = result["peaks_mb"]
    for step in ("upload", "mapping_page", "job"):
        assert peaks[step] < PEAK_MB, (step, peaks)
        assert peaks[step] - peaks["baseline"] < GROWTH_MB, (step, peaks)
    # Nothing lost: every row counted and imported but the two bad ones and the duplicate,
    # which are reported with their spreadsheet row numbers (the header is row 1).
    assert result["rows_shown"] == str(rows)
    assert result["status"] == {"state": "done", "done": rows, "total": rows}
    assert result["imported"] == [str(rows - 3), str(rows)]
    assert result["bad_rows"] == ["3", str(rows + 1)]
    assert result["duplicate_rows"] == [["1002", "C-0"]]
