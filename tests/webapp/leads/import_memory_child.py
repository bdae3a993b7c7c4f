"""The child process of tests/webapp/leads/test_import_memory.py: a web worker's work on one
large CSV file (the upload, the mapping page, the import job run by a real RQ worker in this
process), with this process's peak memory (VmHWM) after each step, printed as JSON.

    python -m tests.webapp.leads.import_memory_child WORKDIR MULTIPART_BODY BOUNDARY
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path


def peak_mb() -> float:
    """This process's peak resident memory: VmHWM, the high-water mark of this program's
    own memory. (ru_maxrss would do, but Linux carries it over from the parent through
    fork and exec: a child of a large pytest process would start at the parent's size.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(workdir: str, body: str, boundary: str) -> None:
    import redis
    from argon2 import PasswordHasher

    import webapp.models.user
    from tests.conftest import REDIS_PREFIX, REDIS_URL, AuthActions, app_config, make_tenant
    from tests.webapp.jobs import run_jobs
    from webapp import create_app
    from webapp.extensions import db

    # Cheap password hashes, as in every test: argon2's 64 MB per sign-in would hide the rest.
    webapp.models.user._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    work = Path(workdir)
    app = create_app(app_config(f"sqlite:///{work / 'child.db'}", upload_dir=str(work / "up")))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    tenant = make_tenant(app, "Alpha")
    client = app.test_client()
    AuthActions(client).login(tenant.admin_email)

    def upload(stream, length: int) -> str:
        kind = f"multipart/form-data; boundary={boundary}"
        response = client.post(
            "/leads/import", input_stream=stream, content_length=length, content_type=kind
        )
        assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
        return response.headers["Location"]

    def start(url: str) -> str:
        data = {
            "header": "y",
            "col0": "phone",
            "col1": "name",
            "col2": "external_id",
            "col3": "",
            "start": "1",
        }
        response = client.post(url, data=data)
        assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
        return response.headers["Location"]

    # A small file first, so that everything loaded once (templates, phone metadata, RQ) is
    # in the baseline and what follows measures what the large file costs.
    small = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="small.csv"\r\nContent-Type: text/csv\r\n\r\n'
        f"phone,name,crm id,notes\r\n+12125550100,Warm Up,W-1,x\r\n"
        f"\r\n--{boundary}--\r\n"
    ).encode()
    url = upload(io.BytesIO(small), len(small))
    assert client.get(url).status_code == 200
    start(url)
    run_jobs(app)
    peaks = {"baseline": peak_mb()}

    size = Path(body).stat().st_size
    with open(body, "rb") as stream:
        url = upload(stream, size)
    peaks["upload"] = peak_mb()
    page = client.get(url).get_data(as_text=True)
    peaks["mapping_page"] = peak_mb()
    shown = re.search(r"(\d+) rows, read as", page)
    job_url = start(url)
    run_jobs(app)
    peaks["job"] = peak_mb()
    report = client.get(job_url).get_data(as_text=True)
    status = client.get(job_url + "/status").get_json()
    bad = report.split('id="bad-rows"')[1].split("</table>")[0] if "bad-rows" in report else ""
    duplicates = report.split('id="duplicate-rows"')[1].split("</table>")[0]
    print(
        json.dumps(
            {
                "peaks_mb": peaks,
                "rows_shown": shown.group(1) if shown else None,
                "status": status,
                "imported": re.search(r"Imported (\d+) of (\d+) rows", report).groups(),
                "bad_rows": re.findall(r"<td>(\d+)</td><td>Phone number", bad),
                "duplicate_rows": re.findall(r"<td>(\d+)</td><td>([^<]+)</td>", duplicates),
            }
        )
    )
    client_ = redis.Redis.from_url(REDIS_URL)
    stale = list(client_.scan_iter(REDIS_PREFIX + "*"))
    if stale:
        client_.delete(*stale)


if __name__ == "__main__":
    main(*sys.argv[1:4])
