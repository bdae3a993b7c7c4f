"""dnsmasq as a real DNS server in tests: the records of a tenant's PBX (NAPTR, SRV, A, AAAA)
served on 127.0.0.1 at a free port, each query it answers written to a log we count.

`./dev test` installs dnsmasq (Debian's dnsmasq-base) when it is missing. It serves only the
records given (names under `--local` domains it does not know are NXDOMAIN) and asks no other
server; it stops with the test.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

_QUERY = re.compile(r"query\[(\w+)\] (\S+) from")


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class DnsServer:
    """One dnsmasq answering for the `domains` (e.g. "test") from `records`: dnsmasq options
    such as "--srv-host=_sip._udp.pbx.test,a.pbx.test,5070,10,60" or
    "--host-record=a.pbx.test,127.0.0.1". `ttl` is the TTL of every record."""

    def __init__(
        self, workdir: Path, records: list[str], *, domains: tuple[str, ...] = ("test",), ttl=60
    ):
        binary = shutil.which("dnsmasq")
        assert binary, "dnsmasq is not installed: ./dev test installs Debian's dnsmasq-base"
        self.port = free_port()
        self.log = workdir / f"dnsmasq-{self.port}.log"
        command = [
            binary,
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--keep-in-foreground",
            "--pid-file=",
            "--user=",  # stays who we are (root in CI drops to nobody otherwise)
            f"--local-ttl={ttl}",
            "--log-queries",
            f"--log-facility={self.log}",
            *[f"--local=/{domain}/" for domain in domains],
            *records,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.log.exists() and "started" in self.log.read_text():
                return
            time.sleep(0.02)
        self.stop()
        raise AssertionError(f"dnsmasq did not start: {self.process.stderr.read().decode()}")

    def queries(self) -> list[tuple[str, str]]:
        """The queries answered so far, as (type, name): ("SRV", "_sip._udp.pbx.test")."""
        return _QUERY.findall(self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
