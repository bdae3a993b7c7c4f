"""SIPp as a real SIP peer in tests: it plays the tenant's PBX from tests/sipp/*.xml.

`./dev test` installs SIPp (Debian's sip-tester) when it is missing. Every run is bounded by
SIPp's own -timeout and by our wait, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from engine.sip.nat import PortRange

SCENARIOS = Path(__file__).parent / "sipp"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_ports(length: int) -> PortRange:
    """`length` consecutive UDP ports free on 127.0.0.1 just now (a SIP port range)."""
    while True:
        start = free_udp_port()
        if start + length > 65536:
            continue
        held = []
        try:
            for port in range(start, start + length):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return PortRange(start, start + length - 1)
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()


@dataclass
class SIPpResult:
    returncode: int
    log: str  # what the scenario's <log> actions wrote
    messages: str  # every message SIPp sent and received
    errors: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0

    def logged(self, prefix: str) -> list[str]:
        return [
            line[len(prefix) + 1 :] for line in self.log.splitlines() if line.startswith(prefix)
        ]


class SIPp:
    """One SIPp process acting as a UAS (the PBX) for `calls` calls."""

    def __init__(
        self,
        scenario: str,
        workdir: Path,
        *,
        calls: int = 1,
        timeout: float = 30,
        fill: dict[str, str] | None = None,
        extra: list[str] = (),
        host: str = "127.0.0.1",
        port: int | None = None,
        transport: str = "u1",
    ):
        binary = shutil.which("sipp")
        assert binary, "SIPp is not installed: ./dev test installs Debian's sip-tester"
        self.host = host  # 127.0.0.1 or ::1: loopback only
        #: SIPp's -t: "u1" (UDP, one socket) or "t1" (TCP, one connection per peer).
        self.transport = transport
        self.port = port or free_udp_port(host)
        self.address = (host, self.port)
        self.workdir = workdir
        name = Path(scenario).stem
        self.files = {
            kind: workdir / f"sipp-{name}-{self.port}.{kind}" for kind in ("log", "msg", "err")
        }
        # Scenarios take their parameters as {{name}} placeholders, filled in here: SIPp
        # checks status codes when it loads a scenario, so its own -key cannot set them.
        text = (SCENARIOS / scenario).read_text()
        for key, value in (fill or {}).items():
            text = text.replace("{{" + key + "}}", str(value))
        assert "{{" not in text, f"{scenario} needs a value for {text.split('{{')[1][:20]}"
        filled = workdir / f"{name}-{self.port}.xml"
        filled.write_text(text)
        command = [
            binary,
            "-sf",
            str(filled),
            "-i",
            host,
            "-p",
            str(self.port),
            "-m",
            str(calls),
            "-timeout",
            f"{timeout}s",
            "-timeout_error",
            "-nostdin",
            "-trace_logs",
            "-log_file",
            str(self.files["log"]),
            "-trace_msg",
            "-message_file",
            str(self.files["msg"]),
            "-trace_err",
            "-error_file",
            str(self.files["err"]),
        ]
        command += ["-t", transport, *extra]
        self.timeout = timeout
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.process.poll() is None:
            kind = socket.SOCK_STREAM if self.transport.startswith("t") else socket.SOCK_DGRAM
            with socket.socket(_family(self.host), kind) as probe:
                try:
                    probe.bind(self.address)
                except OSError:
                    return  # SIPp holds the port
            time.sleep(0.02)
        raise AssertionError(f"SIPp did not start: {self.process.stderr.read().decode()[-500:]}")

    def wait(self) -> SIPpResult:
        try:
            self.process.wait(timeout=self.timeout + 10)
        finally:
            self.stop()
        return self.result()

    def result(self) -> SIPpResult:
        """What SIPp did so far (after `stop()`, everything it did)."""

        def read(kind: str) -> str:
            path = self.files[kind]
            return path.read_text(errors="replace") if path.exists() else ""

        return SIPpResult(self.process.returncode, read("log"), read("msg"), read("err"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
