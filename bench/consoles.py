"""How many operator consoles one web process holds: the portal under gunicorn in its
deployed configuration (deploy/gunicorn.conf.py, one worker), N operators signed in, each with
the console's event stream open; then one screen pop for every operator at once.

    python bench/consoles.py [--consoles 500]

Reports how many streams opened and how many pops arrived, the delay from the pop written
in Redis to its arrival at the console (p50 / p95 / max), and the worker's memory. The peer,
measured in the same run, is the same pop with a single console open: the ratio says what
holding N streams costs each of them. Target (issue 6): at least 500 open consoles per web
process. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench-operator-password"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(database_url: str, prefix: str, operators: int) -> tuple[int, list[int]]:
    """A migrated database with a tenant and its operators (cheap password hashes: argon2
    verifies with the cost written in the hash, so signing in 500 people stays quick)."""
    from argon2 import PasswordHasher

    import webapp.models.user
    from webapp import create_app
    from webapp.cli import upgrade_database
    from webapp.extensions import db
    from webapp.services.accounts import create_operator, create_tenant_with_admin

    webapp.models.user._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    config = {"env": "testing", "database_url": database_url, "redis_url": REDIS_URL,
              "redis_prefix": prefix}  # fmt: skip
    upgrade_database(config)
    app = create_app(config)
    with app.app_context():
        tenant = create_tenant_with_admin("Bench", "admin@bench.example", PASSWORD).tenant
        ids = []
        for n in range(operators):
            operator = create_operator(tenant, name=f"Operator {n}", email=f"op{n}@bench.example",
                                       extension=str(1000 + n), password=PASSWORD,
                                       team_id=None)  # fmt: skip
            operator.user.must_change_password = False
            db.session.flush()
            ids.append(operator.id)
        db.session.commit()
        return tenant.id, ids


def sign_in(base: str, email: str) -> str:
    """The session cookie of a signed-in operator (CSRF token read from the form)."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    opener.open(f"{base}/login", data=form.encode(), timeout=30).read()
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


class Stream:
    """One console's event stream, read with asyncio."""

    def __init__(self, port: int, cookie: str):
        self.port = port
        self.cookie = cookie
        self.ready = asyncio.Event()
        self.popped_at: float | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {self.cookie}"
                     f"\r\nAccept: text/event-stream\r\n\r\n".encode())  # fmt: skip
        await writer.drain()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"retry:"):
                    self.ready.set()
                elif line.startswith(b"event: screen_pop"):
                    self.popped_at = time.time()
                    return
        finally:
            writer.close()


async def pop_all(port: int, cookies: list[str], keys: list[str], timeout: float) -> dict:
    import redis

    from engine.bus import event

    streams = [Stream(port, cookie) for cookie in cookies]
    tasks = [asyncio.ensure_future(stream.run()) for stream in streams]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), timeout)
    opened = sum(s.ready.is_set() for s in streams)
    client = redis.Redis.from_url(REDIS_URL)
    sent_at = time.time()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xadd(key, {"event": event("screen_pop", lead_id=1, attempt_id=1)})
    pipe.execute()
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    delays = [s.popped_at - sent_at for s in streams if s.popped_at]
    return {
        "opened": opened, "popped": len(delays), "p50_ms": ms(percentile(delays, 50)),
        "p95_ms": ms(percentile(delays, 95)), "max_ms": ms(max(delays, default=None)),
    }  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consoles", type=int, default=500)
    args = parser.parse_args(argv)

    from engine.bus import TenantKeys

    workdir = Path(tempfile.mkdtemp(prefix="autocall-bench-consoles-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    print(f"preparing {args.consoles} operators ...", flush=True)
    tenant_id, operator_ids = prepare(database_url, prefix, args.consoles)
    keys = [TenantKeys(prefix, tenant_id).pops(op) for op in operator_ids]
    port = free_port()
    env = dict(os.environ, AUTOCALL_ENV="testing", AUTOCALL_DATABASE_URL=database_url,
               AUTOCALL_REDIS_URL=REDIS_URL, AUTOCALL_REDIS_PREFIX=prefix,
               AUTOCALL_WEB_WORKERS="1")  # fmt: skip
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind",
         f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "webapp:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=open(workdir / "gunicorn.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    print(f"the web process logs to {workdir / 'gunicorn.log'}", flush=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        print("signing in ...", flush=True)
        cookies = [sign_in(base, f"op{n}@bench.example") for n in range(args.consoles)]
        peer = asyncio.run(pop_all(port, cookies[:1], keys[:1], timeout=30))
        many = asyncio.run(pop_all(port, cookies, keys, timeout=60))
        children = subprocess.run(["pgrep", "-P", str(web.pid)], capture_output=True,
                                  text=True).stdout.split()  # fmt: skip
        worker_rss = max((rss_mb(int(pid)) for pid in children), default=0.0)
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            web.kill()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(prefix + "*"))
        if stale:
            client.delete(*stale)
    ratio = round(many["p95_ms"] / peer["p95_ms"], 1) if many["p95_ms"] and peer["p95_ms"] else None
    held = many["opened"] >= 500 and many["popped"] >= 500
    result = {
        "bench": "consoles", "consoles": args.consoles, "one_console": peer,
        "all_consoles": many, "p95_ratio_to_one_console": ratio, "worker_rss_mb": worker_rss,
        "targets": {"consoles_500": held},
    }  # fmt: skip
    print(f"{many['opened']} streams open, {many['popped']} pops arrived: p50 {many['p50_ms']} ms, "
          f"p95 {many['p95_ms']} ms, max {many['max_ms']} ms ({ratio}x one console's p95); "
          f"worker {worker_rss} MB")  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
