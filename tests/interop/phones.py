"""The phones the interop tests ring: PJSIP phones (pjsua_phone.py, each its own process) and
baresip, each registered at the test's Kamailio; what each one saw, read back by the test."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.interop.kamailio import Kamailio, free_port

ROOT = Path(__file__).resolve().parents[2]


class Events:
    """What a phone reported, in order, with a wait for the next match."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.changed = threading.Condition()

    def add(self, item: dict) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def of(self, kind: str, **match) -> list[dict]:
        with self.changed:
            return [
                item
                for item in self.items
                if item["event"] == kind and all(item.get(k) == v for k, v in match.items())
            ]

    def wait(self, kind: str, timeout: float, what: str = "", **match) -> dict:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not (found := self.of(kind, **match)):
                left = deadline - time.monotonic()
                assert left > 0, f"{what or 'the phone'}: no {kind} {match} in {timeout} s"
                self.changed.wait(left)
        return found[0]


_numbers = itertools.count(1)


class PjsuaPhone:
    """A PJSIP phone registered at `kamailio` as `user`; `behaviour`: see pjsua_phone.py."""

    def __init__(self, kamailio: Kamailio, user: str, password: str, **behaviour):
        self.user = user
        # a second phone of the same user (a test that restarts Kamailio) gets its own log
        self.log = kamailio.directory / f"pjsua-{user.lstrip('+')}-{next(_numbers)}.log"
        settings = dict(
            host="127.0.0.1",
            port=kamailio.udp_port,
            transport="udp",  # Kamailio bridges to the trunk's transport
            user=user,
            password=password,
            rtp_port=free_port(),
            log=str(self.log),
            **behaviour,
        )
        self.events = Events()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.interop.pjsua_phone", json.dumps(settings)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.other_output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.events.add(json.loads(line))
            except ValueError:
                self.other_output.append(line)  # a crash's words, kept for the message

    def registered(self, timeout: float = 10.0) -> PjsuaPhone:
        self.events.wait("registration", timeout, f"{self.user} ({self.tail()})", code=200)
        return self

    def tail(self) -> str:
        return "".join(self.other_output[-20:])

    def hang_up(self) -> None:
        """Ask it to stop (it hangs up, unregisters, and exits): `stop` waits for it."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            except OSError:  # gone already
                pass

    def stop(self) -> None:
        self.hang_up()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.reader.join(5)

    def __enter__(self) -> PjsuaPhone:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def pjsua_version() -> str:
    """The binding's version, read without loading PJSIP into pytest's process."""
    return importlib.metadata.version("pjsua2-python")


BARESIP_CONFIG = """\
poll_method epoll
net_interface {host}
sip_listen {host}:{sip_port}
sip_transports {transport}
module_path /usr/lib/baresip/modules
module g711.so
module_app account.so
module_app menu.so
audio_player nothing
audio_source nothing
audio_alert nothing
rtp_ports {rtp_port}-{rtp_end}
"""


class BaresipPhone:
    """baresip registered at `kamailio` as `user`, answering every call at once (the
    account's `answermode=auto`), with a config dir written here and no audio module."""

    def __init__(self, kamailio: Kamailio, user: str, password: str):
        self.user = user
        self.directory = kamailio.directory / f"baresip-{user}"
        self.directory.mkdir()
        rtp = free_port()
        (self.directory / "config").write_text(
            BARESIP_CONFIG.format(
                host="127.0.0.1",
                sip_port=free_port("udp"),
                transport="udp",  # Kamailio bridges to the trunk's transport
                rtp_port=rtp,
                rtp_end=rtp + 10,
            )
        )
        (self.directory / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{kamailio.udp_port};transport=udp>"
            f";auth_pass={password};answermode=auto;regint=300\n"
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            ["baresip", "-f", str(self.directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip())
                self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                assert left > 0, f"baresip: no {pattern!r} in {timeout} s:\n" + "\n".join(
                    self.lines[-30:]
                )
                self.changed.wait(left)

    def registered(self, timeout: float = 10.0) -> BaresipPhone:
        self.wait_for(rf"{re.escape(self.user)}@.*200 OK", timeout)
        return self

    def hang_up(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.reader.join(5)

    def __enter__(self) -> BaresipPhone:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def baresip_version() -> str:
    shown = subprocess.run(["baresip", "-h"], capture_output=True, text=True)
    return (shown.stdout + shown.stderr).splitlines()[0].split(" Copyright")[0]
