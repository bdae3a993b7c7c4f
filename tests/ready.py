"""Waiting for a service the test started to say it is ready."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_until_ready(base: str, process: subprocess.Popen, timeout: float) -> None:
    """Until `base`/readyz answers 200 (database, Redis and a worker on every queue); fails
    when `timeout` seconds pass first or `process` ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "never ready"
        time.sleep(0.5)
