"""Runs the whole service on one machine for development and the demo.

Starts a private Redis when none is configured, then the web portal under gunicorn and
the workers (engine hosts, short jobs, webhook deliveries, the cron scheduler), and stops
everything cleanly on Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

from webapp.config import VAR_DIR, Config


def start_private_redis() -> tuple[subprocess.Popen, str]:
    """A Redis of our own on a Unix socket under var/, gone when we stop."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            "No Redis is configured (AUTOCALL_REDIS_URL) and redis-server is not installed: "
            "install the Debian package redis-server or point AUTOCALL_REDIS_URL at a Redis."
        )
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    sock = VAR_DIR / "redis.sock"
    proc = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(VAR_DIR),
        ],
        stdout=subprocess.DEVNULL,
        process_group=0,  # SERVICE_GROUP
    )
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    return proc, f"unix://{sock}"


def worker_commands(config: Config) -> list[list[str]]:
    """The worker processes of a deployment: engine hosts, short jobs, webhook deliveries,
    the cron scheduler."""
    python = [sys.executable, "-m", "webapp.jobs"]
    return [
        *([[*python, "engines"]] * config.engine_workers),
        [*python, "default"],
        [*python, "webhooks"],
        [*python, "cron"],
    ]


DEMO_PBX_HOST = "127.0.0.1"


def start_demo(config: Config) -> tuple[subprocess.Popen, dict]:
    """The demo PBX, and the demo tenant pointed at it."""
    from webapp import create_app, demo
    from webapp.services.secrets import SecretBox

    host, port = DEMO_PBX_HOST, config.demo_pbx_port
    pbx = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.sim.pbx",
            "--host",
            host,
            "--port",
            str(port),
            "--user",
            demo.PBX_USER,
            "--password",
            demo.PBX_PASSWORD,
            "--ring",
            "2-6",
        ],
        process_group=0,
    )  # SERVICE_GROUP
    app = create_app(config)
    with app.app_context():
        logins = demo.seed(SecretBox(config.encryption_key), host, port)
    return pbx, logins


def print_logins(logins: dict) -> None:
    email, password = logins["admin"]
    print(f"  demo admin:     {email} / {password}")
    for name, email, password in logins["operators"]:
        print(f"  demo operator:  {email} / {password}  ({name})")
    print("  Sign in as an operator and press Go on line: the demo PBX's customers answer,")
    print("  and their cards open as the calls are transferred.", flush=True)


def run_service(config: Config, host: str, port: int | None, demo: bool = False) -> int:
    """`autocall run`: a private Redis when none is configured, the portal, the workers and,
    with `demo`, the demo PBX with its demo tenant."""
    children: list[subprocess.Popen] = []
    services: list[subprocess.Popen] = []  # stopped after the others, which use them
    if not config.redis_url:
        redis_proc, redis_url = start_private_redis()
        services.append(redis_proc)
        config = replace(config, redis_url=redis_url)
        print(f"Private Redis at {redis_url}", flush=True)
    logins = None
    if demo:
        pbx, logins = start_demo(config)
        services.append(pbx)

    env = dict(os.environ, AUTOCALL_REDIS_URL=config.redis_url)
    port = port or config.web_port
    if not config.public_url:  # links in mail lead to the portal started here
        env["AUTOCALL_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    # The deployed settings (webapp/gunicorn_conf.py, which deploy/gunicorn.conf.py hands
    # gunicorn), from the package: this may run anywhere.
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:webapp.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "webapp:create_app()",
    ]
    for command in [web, *worker_commands(config)]:
        children.append(subprocess.Popen(command, env=env))
    print(f"AutoCall Cloud portal: http://{host}:{port}/  (Ctrl-C stops everything)", flush=True)
    if logins:
        print_logins(logins)
    return supervise(children, services)


def run_workers(config: Config) -> int:
    """`autocall worker`: the worker processes of one machine."""
    if not config.redis_url:
        raise SystemExit("autocall worker needs a Redis: set AUTOCALL_REDIS_URL")
    children = [subprocess.Popen(command) for command in worker_commands(config)]
    return supervise(children)


def supervise(children: list[subprocess.Popen], services: list[subprocess.Popen] = ()) -> int:
    """Wait until a signal or a child's death, then stop the children, and then the
    services they use (the private Redis, the demo PBX).

    SERVICE_GROUP: services run in a process group of their own, so that the terminal's
    Ctrl-C (sent to the whole foreground group) reaches the portal and the workers but not
    the Redis they are still using while they shut down; this function stops services last.

    Engine hosts drain on SIGTERM (calls in flight end), so they get a long grace time."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(c.poll() is None for c in [*children, *services]):
            time.sleep(0.2)
    finally:
        for group in (children, services):
            for child in reversed(group):
                if child.poll() is None:
                    child.terminate()
            for child in reversed(group):
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
    failed = [c for c in [*children, *services] if c.returncode not in (0, -signal.SIGTERM)]
    return 1 if failed and not stopping else 0
