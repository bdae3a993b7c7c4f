"""The console's event streams in a real gunicorn web process, configured by
deploy/gunicorn.conf.py as deployed but small: room for 3 streams and 2 page threads. With
the streams' threads all taken, the sign-in page still answers and a fourth stream is
refused with 503; a console whose browser went away frees its place without a write to it
(the process sees the closed connection), and the next stream opens."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, REDIS_PREFIX, REDIS_URL

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def web(tmp_path):
    """A migrated SQLite database with a tenant and an operator, served by gunicorn:
    (base URL, the operator's email)."""
    from tests.conftest import app_config, make_tenant
    from webapp import create_app
    from webapp.cli import upgrade_database

    database_url = f"sqlite:///{tmp_path / 'web.db'}"
    config = app_config(database_url)
    upgrade_database(config)
    operator_email = make_tenant(create_app(config), "Alpha").operator_email
    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        AUTOCALL_ENV="testing",
        AUTOCALL_DATABASE_URL=database_url,
        AUTOCALL_REDIS_URL=REDIS_URL,
        AUTOCALL_REDIS_PREFIX=REDIS_PREFIX,
        AUTOCALL_WEB_WORKERS="1",
        AUTOCALL_WEB_STREAMS="3",
        AUTOCALL_WEB_PAGE_THREADS="2",
        AUTOCALL_STREAMS_PER_USER="5",
    )
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "webapp:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield base, operator_email
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def sign_in(base: str, email: str) -> str:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    opener.open(f"{base}/login", data=form.encode(), timeout=10).read()
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def open_stream(base: str, cookie: str) -> tuple[socket.socket, bytes]:
    """A raw connection asking for the event stream: (the socket, what came first: the
    status line and headers, and the first event-stream line or the refusal's body)."""
    port = int(base.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(
        f"GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}"
        f"\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    received = b""
    while b"retry:" not in received and b"}" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return connection, received


def test_full_stream_threads_leave_the_pages_answering_and_a_gone_console_frees_its_place(
    web,
):
    base, email = web
    cookie = sign_in(base, email)
    held = [open_stream(base, cookie) for _ in range(3)]
    assert all(first.startswith(b"HTTP/1.1 200") for _sock, first in held)
    # Every stream thread is taken: pages are served by their own threads.
    with urllib.request.urlopen(f"{base}/login", timeout=10) as page:
        assert page.status == 200 and b"Sign in" in page.read()
    extra, first = open_stream(base, cookie)
    extra.close()
    assert first.startswith(b"HTTP/1.1 503") and b"The server is busy" in first
    assert b"Retry-After: 5" in first
    # A tab closes: the process sees the closed connection within seconds, without writing.
    held[0][0].close()
    deadline = time.monotonic() + 30
    while True:
        again, first = open_stream(base, cookie)
        again.close()
        if first.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert first.startswith(b"HTTP/1.1 200"), first
    for connection, _first in held[1:]:
        connection.close()
