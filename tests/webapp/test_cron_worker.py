"""The cron scheduler's process (`python -m webapp.jobs cron`) stops cleanly on a stop signal
and on a second one that comes while it stops (Ctrl-C reaches the whole process group, then
`autocall run` sends its children SIGTERM): exit code 0, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from tests.conftest import REDIS_URL


def test_two_stop_signals_in_a_row_end_the_cron_scheduler_cleanly(tmp_path):
    log = tmp_path / "cron.log"
    env = dict(
        os.environ,
        AUTOCALL_REDIS_URL=REDIS_URL,
        AUTOCALL_REDIS_PREFIX=f"cron-test-{uuid.uuid4().hex[:8]}:",
        AUTOCALL_ENV="testing",
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp.jobs", "cron"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "starting" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.3)  # in its loop
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text()
    assert "Traceback" not in output, output
    assert "shutdown" in output or "stop requested" in output, output
