"""How many operator consoles one web process holds, and whether its pages still answer: the
portal under gunicorn in its deployed configuration (deploy/gunicorn.conf.py, one worker),
N operators signed in, each with the console's event stream open; the sign-in page timed
beside them; then one screen pop for every operator at once.

    python bench/consoles.py [--consoles 2000]

Loopback only: the bench starts its own web process on 127.0.0.1 and opens every
connection there; --consoles is bounded (MAX_CONSOLES). Reports how many streams opened
(and how many were refused), the sign-in page's latency (p50 / p95) with no console open
and with all N open, and their ratio; the delay from the pop written in Redis to its
arrival at the console (p50 / p95 / max) beside the same pop with a single console open;
the worker's memory and threads. Target (issue 15): 2,000 open consoles on one web process,
its pages answering. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import resource
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
#: The most consoles one run opens (each is a socket here and one in the web process).
MAX_CONSOLES = 5000
#: Sign-in page requests timed with and without the consoles open.
PAGE_SAMPLES = 50


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
    config = {
        "env": "testing",
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
    }
    upgrade_database(config)
    app = create_app(config)
    with app.app_context():
        tenant = create_tenant_with_admin("Bench", "admin@bench.example", PASSWORD).tenant
        ids = []
        for n in range(operators):
            operator = create_operator(
                tenant,
                name=f"Operator {n}",
                email=f"op{n}@bench.example",
                extension=str(1000 + n),
                password=PASSWORD,
                team_id=None,
            )
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
        self.status: int | None = None
        self.popped_at: float | None = None

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.ready.set()
            return
        writer.write(
            f"GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {self.cookie}"
            f"\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        try:
            status = await reader.readline()
            self.status = int(status.split()[1]) if status.startswith(b"HTTP/") else 0
            if self.status != 200:  # refused: 429 (a cap) or 503 (the process is full)
                self.ready.set()
                return
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"retry:"):
                    self.ready.set()
                elif line.startswith(b"event: screen_pop"):
                    self.popped_at = time.time()
                    return
        except (OSError, ValueError, IndexError):
            self.ready.set()
        finally:
            writer.close()


def page_latency(url: str, samples: int) -> dict:
    """The page asked for `samples` times in a row: p50 / p95 / max and how many failed."""
    times, failed = [], 0
    for _ in range(samples):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                answer.read()
            times.append(time.perf_counter() - started)
        except OSError:
            failed += 1
    return {
        "p50_ms": ms(percentile(times, 50)),
        "p95_ms": ms(percentile(times, 95)),
        "max_ms": ms(max(times, default=None)),
        "failed": failed,
    }


async def consoles(
    port: int, cookies: list[str], keys: list[str], timeout: float, page_url: str | None = None
) -> dict:
    """Open a console for every cookie, time the page while they are open, then write a
    screen pop for every operator at once and time its arrival."""
    import redis

    from engine.bus import event

    streams = [Stream(port, cookie) for cookie in cookies]
    tasks = [asyncio.ensure_future(stream.run()) for stream in streams]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), timeout)
    opened = sum(s.status == 200 for s in streams)
    refused = sum(s.status not in (None, 200) for s in streams)
    page = None
    if page_url:
        loop = asyncio.get_running_loop()
        page = await loop.run_in_executor(None, page_latency, page_url, PAGE_SAMPLES)
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
        "opened": opened,
        "refused": refused,
        "popped": len(delays),
        "p50_ms": ms(percentile(delays, 50)),
        "p95_ms": ms(percentile(delays, 95)),
        "max_ms": ms(max(delays, default=None)),
        "page": page,
    }


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            found[name] = int(value.split()[0])
    return found


def ratio(many: float | None, one: float | None) -> float | None:
    return round(many / one, 1) if many and one else None


def consoles_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= MAX_CONSOLES:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_CONSOLES}")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--consoles",
        type=consoles_count,
        default=2000,
        help=f"consoles to open (at most {MAX_CONSOLES})",
    )
    args = parser.parse_args(argv)

    from engine.bus import TenantKeys
    from webapp.config import Config

    # A socket per console here, and one in the web process (which inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 4 * args.consoles + 1024
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
    workdir = Path(tempfile.mkdtemp(prefix="autocall-bench-consoles-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    print(f"preparing {args.consoles} operators ...", flush=True)
    tenant_id, operator_ids = prepare(database_url, prefix, args.consoles)
    keys = [TenantKeys(prefix, tenant_id).pops(op) for op in operator_ids]
    port = free_port()
    # The deployed settings; the bench's one tenant may open a stream per operator (and one
    # more: the one-console run's stream may still be closing), and the process as many as
    # asked for when that is more than its default.
    env = dict(
        os.environ,
        AUTOCALL_ENV="testing",
        AUTOCALL_DATABASE_URL=database_url,
        AUTOCALL_REDIS_URL=REDIS_URL,
        AUTOCALL_REDIS_PREFIX=prefix,
        AUTOCALL_WEB_WORKERS="1",
        AUTOCALL_STREAMS_PER_TENANT=str(args.consoles + 1),
        AUTOCALL_WEB_STREAMS=str(max(Config.web_streams, args.consoles + 1)),
    )
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
            "webapp:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "gunicorn.log", "w"),  # noqa: SIM115
    )
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
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            cookies = list(
                pool.map(lambda n: sign_in(base, f"op{n}@bench.example"), range(args.consoles))
            )
        children = subprocess.run(
            ["pgrep", "-P", str(web.pid)], capture_output=True, text=True
        ).stdout.split()
        worker = int(children[0])
        print("timing the sign-in page with no console open ...", flush=True)
        alone = page_latency(f"{base}/login", PAGE_SAMPLES)
        peer = asyncio.run(consoles(port, cookies[:1], keys[:1], timeout=30))
        print(f"opening {args.consoles} consoles ...", flush=True)
        many = asyncio.run(consoles(port, cookies, keys, timeout=120, page_url=f"{base}/login"))
        worker_status = proc_status(worker)
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
    beside = many["page"]
    page = {
        "no_consoles": alone,
        "consoles_open": beside,
        "p50_ratio": ratio(beside["p50_ms"], alone["p50_ms"]),
        "p95_ratio": ratio(beside["p95_ms"], alone["p95_ms"]),
    }
    del many["page"]
    held = many["opened"] >= args.consoles and many["popped"] >= args.consoles
    result = {
        "bench": "consoles",
        "consoles": args.consoles,
        "one_console": peer,
        "all_consoles": many,
        "p95_ratio_to_one_console": ratio(many["p95_ms"], peer["p95_ms"]),
        "sign_in_page": page,
        "worker_rss_mb": round(worker_status.get("VmRSS", 0) / 1024, 1),
        "worker_threads": worker_status.get("Threads"),
        "targets": {
            f"consoles_{args.consoles}": held,
            "pages_answer": held and beside["failed"] == 0 and bool(beside["p95_ms"]),
        },
    }
    print(
        f"{many['opened']} streams open ({many['refused']} refused), {many['popped']} pops "
        f"arrived: p50 {many['p50_ms']} ms, p95 {many['p95_ms']} ms, max {many['max_ms']} ms "
        f"({result['p95_ratio_to_one_console']}x one console's p95)"
    )
    print(
        f"sign-in page: p50 {alone['p50_ms']} ms, p95 {alone['p95_ms']} ms with no console "
        f"open; p50 {beside['p50_ms']} ms, p95 {beside['p95_ms']} ms with "
        f"{many['opened']} open ({page['p50_ratio']}x / {page['p95_ratio']}x); "
        f"{beside['failed']} failed"
    )
    print(f"worker {result['worker_rss_mb']} MB, {result['worker_threads']} threads")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
