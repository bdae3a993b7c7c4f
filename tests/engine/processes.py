"""Real processes for the engine's fault tests: a Redis of the test's own (to restart), engine
hosts as real RQ workers (to kill, pause and resume), and a TCP proxy in front of PostgreSQL
that stalls the database connection as a hung network or server does."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from tests.conftest import REDIS_PREFIX


class PrivateRedis:
    def __init__(self, workdir):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        command = [
            shutil.which("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def restart(self) -> None:
        """Everything in Redis is gone: leases, presence, queues."""
        self.stop()
        self.start()


class Worker:
    """`python -m webapp.jobs engines` in its own process group (kill -9 takes the horse too)."""

    def __init__(self, database_url: str, redis_url: str, workdir):
        env = dict(
            os.environ,
            AUTOCALL_DATABASE_URL=database_url,
            AUTOCALL_REDIS_URL=redis_url,
            AUTOCALL_REDIS_PREFIX=REDIS_PREFIX,
            AUTOCALL_ENGINE_BIND="127.0.0.1",
            AUTOCALL_ENV="testing",
        )
        self.env = env
        self.redis_url = redis_url
        self.log = open(workdir / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webapp.jobs", "engines"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def enqueue_hosts(self) -> None:
        """What the cron scheduler does every few seconds."""
        code = "from webapp.jobs.engines import ensure_hosts; print(ensure_hosts())"
        subprocess.run([sys.executable, "-c", code], env=self.env, check=True, timeout=30)

    def kill(self, redis_url: str) -> None:
        """SIGKILL the worker and the engine hosts it runs (each in a work horse of its own
        process group: RQ forks it so)."""
        for pid in host_pids(redis_url):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm: the host drains
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def host_pids(redis_url: str) -> list[int]:
    """The process ids of the engine hosts alive (their ids are host:pid:random)."""
    import redis

    from engine.bus import hosts_key

    connection = redis.Redis.from_url(redis_url)
    try:
        return [
            int(host.decode().split(":")[1])
            for host in connection.zrange(hosts_key(REDIS_PREFIX), 0, -1)
        ]
    finally:
        connection.close()


class StallingProxy:
    """A TCP proxy to PostgreSQL. `stall()` stops it forwarding anything, both ways, until
    `resume()`: the engine's connections hang mid-query as with a hung network or server,
    holding whatever locks their transactions took."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        """`database_url` (PostgreSQL on 127.0.0.1:5432) through this proxy."""
        return database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{self.port}/")

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self.flowing.wait()
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.listener.close()
        for connection in self.sockets:
            with contextlib.suppress(OSError):
                connection.close()
