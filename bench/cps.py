"""How many complete call flows per second the user agent sustains, against SIPp as the PBX.

    .venv/bin/python bench/cps.py            # the full run, under ten minutes
    .venv/bin/python bench/cps.py --quick    # 5 s steps: about two minutes
    .venv/bin/python bench/cps.py --smoke    # one 2 s step at 20 cps each side: a functional check
    .venv/bin/python bench/cps.py --transport tcp --quick   # the same over TCP (SIPp's -t t1)

One complete call flow is the one of docs/sip.md, with the PBX played by SIPp
(bench/sipp/pbx_transfer.xml, no pauses): INVITE -> 180 -> 200 (SDP), ACK, REFER -> 202,
NOTIFY 100 and NOTIFY 200 (each answered 200), then the PBX's BYE (answered 200).

Three parts, in this order, all on 127.0.0.1:

1. **Answer -> REFER latency** at 100 calls per second (a dedicated step): the time from the 200 OK
   to the REFER, measured twice. From the attempt's own stamps (`refer_at - answer_at`, wall
   clock), as the UA records them; and "on the wire" by this benchmark, which wraps the UA's
   transport (without changing it) to stamp with `time.perf_counter` the moment the datagram
   carrying the 200 OK reaches the transport and the moment the REFER datagram has been handed
   to the kernel. The attempt's answer stamp is taken once the 200 OK has been parsed and
   matched to its transaction and call (in the same callback), so it sees less than the wire
   does; the target is judged on the larger p99 of the two, and both are printed.
2. **Our user agent**: one process, one event loop, one `UserAgent` (one UDP socket, or one
   TCP connection with `--transport tcp`) per step,
   call starts paced with asyncio at the step's rate, each call a concurrent task. Rates rise
   (500, 1000, 2000, 3000, 4000, ... calls per second)
   until a step fails: the low rates are the latency step's business, and the time budget
   must leave room for the steps near the ceiling.
3. **SIPp calling SIPp** (bench/sipp/uac_transfer.xml against pbx_transfer.xml, `-r RATE -m N`)
   with the same flow and the same pass rule, rising until a step fails: the ceiling of this
   machine. Its ladder starts at 2000 cps and rises by 1000 up to 8000, then by larger
   steps, since only its ceiling is of interest and steps cost time.

`--transport tcp`: every part over TCP. Our UA's SIP account says `transport=tcp` (one
connection to the PBX for every call, engine/sip/stream.py), and both SIPps run with `-t t1`
(one TCP connection, as ours), so the ratio compares like with like. After the three parts,
**the TLS handshake's cost per PBX connection**: Kamailio (tests/interop/kamailio.py, a
registrar with a certificate from a test CA, tests/kamailio.py) listening on TCP, then on TLS;
each repetition opens a new connection with our stream transport and sends one REGISTER, timed
from the first byte asked to go until its answer (401, the challenge) is in: the median over
TLS minus the median over TCP is what TLS adds, paid once per connection, not per call.

Cores: this process (our UA, or SIPp's dialer side in part 3) is pinned to one core and the
SIPp PBX to the other (`os.sched_setaffinity`), so "one core" means one core. SIPp's sockets get
the same buffer size as the UA's socket (RECEIVE_BUFFER, 4 MiB, as far as net.core.rmem_max
allows).

A step passes when every call in it ended answered with the transfer succeeded, all of them
within the step's duration plus 2 s (the side that dials kept pace: a call not started or not
finished by then counts as failed), and nothing is left over: no call still running, the
PBX's SIPp exited by itself with status 0, counting N successful calls, no failed call and no
out-of-call message. For SIPp-to-SIPp the dialing SIPp must say the same. Retransmissions are
counted and shown; they do not fail a step by themselves.

Nothing here asserts a timing; the targets (>= 500 complete call flows per second on one core,
>= half the SIPp-to-SIPp ceiling, answer -> REFER p99 < 5 ms at 100 cps) are reported as met or
not. The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import engine.sip  # noqa: E402
from engine.sip.transport import RECEIVE_BUFFER  # noqa: E402
from engine.sip.ua import Account, UserAgent  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent / "sipp"
HOST = "127.0.0.1"
PACE_GRACE = 2.0  # seconds after the last scheduled start by which every call must be over
ABORT_LAG = 5.0  # the dialer is this far behind its schedule: the step has failed, stop it
SETTLE = 1.0  # seconds between steps, for the previous step's sockets and timers to go
OUR_BYE_GRACE = 0.5  # the PBX sends the BYE; this only matters if it does not
TARGET_CPS = 500
TARGET_P99_MS = 5.0

MODES = {
    # our ladder, SIPp's ladder, seconds per step, seconds of the 100 cps latency step
    "default": (
        [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000],
        [2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000, 15000, 20000],
        30.0,
        20.0,
    ),
    "quick": (
        [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
        [2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000],
        5.0,
        5.0,
    ),
    "smoke": ([20], [20], 2.0, 0.0),
}


# --- small helpers ---------------------------------------------------------------------------


def free_port(transport: str = "udp") -> int:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation): a value that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value * 1000, digits)


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def udp_drops(port: int) -> int | None:
    """Datagrams the kernel dropped for the UDP socket bound to 127.0.0.1:port because its
    receive buffer was full (the last column of /proc/net/udp); None when not found."""
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/udp") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 12 and fields[1] == wanted:
                    return int(fields[-1])
    except OSError:
        return None
    return None


def pick_cores() -> tuple[int | None, int | None]:
    """(our core, SIPp's core): two different cores when this process may use two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[0], cores[1]


# --- SIPp ------------------------------------------------------------------------------------


@dataclass
class SIPpStats:
    returncode: int | None
    wall: float
    stats: dict[str, str] = field(default_factory=dict)
    errors: str = ""

    def count(self, name: str) -> int | None:
        value = self.stats.get(name)
        return int(value) if value not in (None, "") and value.isdigit() else None


class SIPpProcess:
    """One SIPp run on 127.0.0.1, bounded by SIPp's own -timeout and by our kill."""

    def __init__(
        self,
        scenario: str,
        workdir: Path,
        *,
        calls: int,
        timeout: float,
        core: int | None,
        buffer: int,
        rate: float | None = None,
        remote: tuple[str, int] | None = None,
        transport: str = "udp",
    ):
        binary = shutil.which("sipp")
        if not binary:
            raise SystemExit("SIPp is not installed (Debian's sip-tester): ./dev test installs it")
        self.transport = transport
        self.port = free_port(transport)
        name = Path(scenario).stem
        self.stat_file = workdir / f"{name}-{self.port}.csv"
        self.error_file = workdir / f"{name}-{self.port}.err"
        command = [
            binary,
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            HOST,
            "-p",
            str(self.port),
            "-m",
            str(calls),
            "-timeout",
            f"{timeout:.0f}s",
            "-timeout_error",
            "-nostdin",
            "-buff_size",
            str(buffer),
            "-trace_stat",
            "-stf",
            str(self.stat_file),
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            str(self.error_file),
        ]
        if transport == "tcp":
            command += ["-t", "t1"]  # one TCP connection, as our UA keeps one to the PBX
        if rate is not None:
            command += ["-r", f"{rate:g}", "-rp", "1000"]
        if remote is not None:
            command.append(f"{remote[0]}:{remote[1]}")

        def pin():
            if core is not None:
                os.sched_setaffinity(0, {core})

        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            preexec_fn=pin,
            cwd=workdir,
        )
        self.ended: float | None = None
        self.drops: int | None = None

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + 5
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        while time.monotonic() < deadline and self.process.poll() is None:
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind((HOST, self.port))
                except OSError:
                    return  # SIPp holds the port
            time.sleep(0.01)
        self.kill()
        raise SystemExit(f"SIPp did not start: {self.read_errors()}")

    def sample_drops(self) -> None:
        """Note the drops on SIPp's socket (gone once SIPp exits, so sampled while it runs);
        UDP only: a TCP stream drops nothing."""
        if self.transport != "udp":
            return
        drops = udp_drops(self.port)
        if drops is not None:
            self.drops = drops

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        return code

    def wait(self, timeout: float) -> SIPpStats:
        """Wait for SIPp to exit by itself; kill it (returncode None) when it does not."""
        try:
            self.process.wait(timeout=max(0.0, timeout))
            self.poll()
            code = self.process.returncode
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        wall = (self.ended or time.monotonic()) - self.started
        return SIPpStats(code, wall, self.read_stats(), self.read_errors())

    async def wait_async(self, timeout: float) -> SIPpStats:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            self.sample_drops()
            await asyncio.sleep(0.05)
        return self.wait(deadline - time.monotonic())

    def wait_sampling(self, timeout: float) -> SIPpStats:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            self.sample_drops()
            time.sleep(0.05)
        return self.wait(deadline - time.monotonic())

    def kill(self) -> None:
        """SIGTERM (SIPp then writes its statistics), SIGKILL if it is still there after 2 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()

    def read_stats(self) -> dict[str, str]:
        """The last line of SIPp's statistics file, by column name."""
        try:
            lines = self.stat_file.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        lines = [line for line in lines if line.strip()]
        if len(lines) < 2:
            return {}
        names = lines[0].split(";")
        return dict(zip(names, lines[-1].split(";"), strict=False))

    def read_errors(self, limit: int = 3) -> str:
        try:
            with self.error_file.open(errors="replace") as f:
                lines = [next(f, "").strip() for _ in range(limit)]
        except OSError:
            return ""
        return " | ".join(line for line in lines if line)


def sipp_verdict(result: SIPpStats, calls: int, who: str) -> list[str]:
    """What is wrong with a SIPp run that should have completed `calls` calls; [] when nothing."""
    problems = []
    if result.returncode is None:
        problems.append(f"{who} SIPp did not finish by itself (killed)")
    elif result.returncode != 0:
        problems.append(f"{who} SIPp exited {result.returncode}")
    ok = result.count("SuccessfulCall(C)")
    failed = result.count("FailedCall(C)")
    current = result.count("CurrentCall")
    out_of_call = result.count("OutOfCallMsgs(C)")
    if ok is None:
        problems.append(f"{who} SIPp wrote no statistics")
        return problems
    if ok != calls:
        problems.append(f"{who} SIPp: {ok}/{calls} successful")
    if failed:
        problems.append(f"{who} SIPp: {failed} failed")
    if current:
        problems.append(f"{who} SIPp: {current} calls left over")
    if out_of_call:
        problems.append(f"{who} SIPp: {out_of_call} out-of-call messages")
    return problems


def sipp_summary(result: SIPpStats) -> dict:
    return {
        "exit": result.returncode,
        "successful": result.count("SuccessfulCall(C)"),
        "failed": result.count("FailedCall(C)"),
        "retransmissions": result.count("Retransmissions(C)"),
        "out_of_call": result.count("OutOfCallMsgs(C)"),
        "dead_call": result.count("DeadCallMsgs(C)"),
    }


# --- the wire-level answer -> REFER stamps -------------------------------------------------

_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+?)[ \t]*\r?$", re.I | re.M)
_INVITE_CSEQ = re.compile(rb"^(?:CSeq)[ \t]*:[ \t]*\d+[ \t]+INVITE[ \t]*\r?$", re.I | re.M)


class WireStamps:
    """Wraps a started UA's transport, without changing what it does, to note when each 200 OK
    to an INVITE arrives and when each REFER leaves (time.perf_counter), by Call-ID. Over UDP
    a message arrives by `datagram_received`; over TCP by the stream transport's `_received`,
    once framed (private, wrapped here only to read)."""

    def __init__(self, ua: UserAgent):
        self.ok_received: dict[bytes, float] = {}
        self.refer_sent: dict[bytes, float] = {}
        transport = ua.transport
        entry = "datagram_received" if hasattr(transport, "datagram_received") else "_received"
        received, send = getattr(transport, entry), transport.send

        def datagram_received(data: bytes, source) -> None:
            now = time.perf_counter()
            if data.startswith(b"SIP/2.0 2") and _INVITE_CSEQ.search(data):
                match = _CALL_ID.search(data)
                if match:
                    self.ok_received.setdefault(match.group(1), now)
            received(data, source)

        def send_and_stamp(data: bytes, destination) -> None:
            send(data, destination)
            if data.startswith(b"REFER "):
                now = time.perf_counter()
                match = _CALL_ID.search(data)
                if match:
                    self.refer_sent.setdefault(match.group(1), now)

        # Instance attributes: asyncio looks the protocol's method up on each datagram, and
        # the UA calls transport.send through the instance.
        setattr(transport, entry, datagram_received)
        transport.send = send_and_stamp

    def delays(self) -> list[float]:
        return [
            self.refer_sent[call_id] - at
            for call_id, at in self.ok_received.items()
            if call_id in self.refer_sent
        ]


# --- our user agent ----------------------------------------------------------------------


def transfer_of(attempt) -> str | None:
    """The transfer's result: `transfer_result` (an enum of str) in the current UA, `transfer`
    in the first one."""
    value = getattr(attempt, "transfer_result", None) or getattr(attempt, "transfer", None)
    return None if value is None else str(value)


@dataclass
class Options:
    workdir: Path
    ua_core: int | None
    sipp_core: int | None
    buffer: int
    transport: str = "udp"


async def our_step(rate: float, seconds: float, options: Options, *, wire: bool = False) -> dict:
    """Our UA places rate*seconds calls at `rate` per second against a fresh SIPp PBX."""
    calls = max(1, round(rate * seconds))
    pbx = SIPpProcess(
        "pbx_transfer.xml",
        options.workdir,
        calls=calls,
        timeout=seconds + 60,
        core=options.sipp_core,
        buffer=options.buffer,
        transport=options.transport,
    )
    pbx.wait_until_listening()
    loop = asyncio.get_running_loop()
    account = Account(HOST, pbx.port, "dialer", "secret", transport=options.transport)
    cpu_before = cpu_seconds(resource.RUSAGE_SELF)
    problems: list[str] = []
    # Each call's task is kept only while it runs; what the step needs of a finished call is
    # kept as a tuple of plain values (see `finished`). Holding every finished task (its
    # coroutine, context and CallRecord: five objects a call) would make the garbage
    # collector's full passes in this process grow with the step's length, and measure this
    # harness rather than the user agent.
    running: set[asyncio.Task] = set()
    results: list[tuple] = []
    raised: list[str] = []
    started = 0
    stamps = None
    pauses: list[tuple[int, float]] = []  # the cyclic GC's collections: (generation, seconds)
    began = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - began[0]))

    async def sample_pbx_drops():
        while True:
            pbx.sample_drops()
            await asyncio.sleep(0.5)

    async with UserAgent(account, local_host=HOST) as ua:
        stamps = WireStamps(ua) if wire else None
        sampler = loop.create_task(sample_pbx_drops())
        gc.callbacks.append(on_gc)
        target = f"sip:+3312345{{:05d}}@{HOST}:{pbx.port}"
        refer_to = f"sip:operator@{HOST}:{pbx.port}"
        retransmissions_before = ua.layer.retransmissions
        start = loop.time() + 0.05
        wall_start = time.time() + (start - loop.time())
        aborted = False

        def finished(task: asyncio.Task, i: int) -> None:
            running.discard(task)
            if task.cancelled():
                return
            if task.exception() is not None:
                raised.append(repr(task.exception()))
                return
            a = task.result()
            results.append(
                (
                    i,
                    str(a.outcome),
                    transfer_of(a),
                    None if a.detail is None else str(a.detail),
                    a.invite_at,
                    a.answer_at,
                    a.refer_at,
                    a.end_at,
                )
            )

        for i in range(calls):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > ABORT_LAG:
                aborted = True
                break
            task = loop.create_task(
                ua.place_call(
                    target.format(i),
                    refer_to,
                    ring_timeout=10.0,
                    transfer_timeout=10.0,
                    bye_grace=OUR_BYE_GRACE,
                )
            )
            task.add_done_callback(lambda task, i=i: finished(task, i))
            running.add(task)
            started += 1
        if aborted:
            problems.append(f"fell {ABORT_LAG:.0f} s behind its schedule after {started} calls")
        deadline = start + seconds + PACE_GRACE
        if running:
            await asyncio.wait(set(running), timeout=max(0.0, deadline - loop.time()))
        finished_at = loop.time()
        unfinished = list(running)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=5)
            problems.append(f"{len(unfinished)} calls not over by the step's end + {PACE_GRACE} s")
        if started < calls:
            problems.append(f"{calls - started} calls never started")
        problems += [f"a call raised {error}" for error in raised]
        lags = [r[4] - (wall_start + r[0] / rate) for r in results]
        left = len(ua._calls)  # calls the UA still tracks after the step (private: read-only)
        if left:
            problems.append(f"{left} calls left in the UA")
        retransmissions = ua.layer.retransmissions - retransmissions_before
        lingering = len(ua.layer.client) + len(ua.layer.lingering) + len(ua.layer.server)
        ua_drops = udp_drops(ua.port) if options.transport == "udp" else None
        sampler.cancel()
        gc.callbacks.remove(on_gc)
    cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu_before
    wall = finished_at - start
    pbx_result = await pbx.wait_async(3.0 if problems else max(5.0, deadline + 10 - loop.time()))

    outcomes = Counter()
    for _, outcome, transfer, detail, *_ in results:
        if outcome == "answered" and transfer == "succeeded":
            outcomes["ok"] += 1
        else:
            outcomes[f"{outcome}/{transfer or detail}"] += 1
    bad = {kind: n for kind, n in outcomes.items() if kind != "ok"}
    if bad:
        problems.append("outcomes " + ", ".join(f"{k}: {n}" for k, n in sorted(bad.items())))
    problems += sipp_verdict(pbx_result, calls, "PBX")

    durations = [end - invite for _, _, _, _, invite, _, _, end in results if end and invite]
    refer = [at - answer for _, _, _, _, _, answer, at, _ in results if at and answer]
    step = {
        "side": "ours",
        "cps": rate,
        "seconds": seconds,
        "calls": calls,
        "ok": outcomes["ok"],
        "passed": not problems,
        "problems": problems,
        "start_lag_max_ms": ms(max(lags) if lags else None, 1),
        "call_p50_ms": ms(percentile(durations, 50), 2),
        "call_p99_ms": ms(percentile(durations, 99), 2),
        "answer_to_refer_p50_ms": ms(percentile(refer, 50)),
        "answer_to_refer_p99_ms": ms(percentile(refer, 99)),
        "ua_retransmissions": retransmissions,
        "ua_socket_drops": ua_drops,
        "pbx_socket_drops": pbx.drops,
        "ua_lingering_transactions": lingering,
        "ua_core_busy": round(cpu / wall, 3) if wall > 0 else None,
        "gc_full_collections": sum(1 for generation, _ in pauses if generation == 2),
        "gc_max_pause_ms": ms(max((t for _, t in pauses), default=None), 1),
        "pbx": sipp_summary(pbx_result),
    }
    if pbx_result.errors and not step["passed"]:
        step["pbx_errors"] = pbx_result.errors[:300]
    step["wire_delays"] = stamps.delays() if stamps is not None else []
    step["attempt_delays"] = refer
    return step


# --- SIPp calling SIPp -------------------------------------------------------------------


def sipp_step(rate: float, seconds: float, options: Options) -> dict:
    calls = max(1, round(rate * seconds))
    pbx = SIPpProcess(
        "pbx_transfer.xml",
        options.workdir,
        calls=calls,
        timeout=seconds + 60,
        core=options.sipp_core,
        buffer=options.buffer,
        transport=options.transport,
    )
    pbx.wait_until_listening()
    children_before = cpu_seconds(resource.RUSAGE_CHILDREN)
    uac = SIPpProcess(
        "uac_transfer.xml",
        options.workdir,
        calls=calls,
        timeout=seconds + 60,
        core=options.ua_core,
        buffer=options.buffer,
        rate=rate,
        remote=(HOST, pbx.port),
        transport=options.transport,
    )
    deadline = time.monotonic() + seconds + PACE_GRACE + 3
    while uac.poll() is None and time.monotonic() < deadline:
        uac.sample_drops()
        pbx.sample_drops()
        time.sleep(0.1)
    uac_result = uac.wait(deadline - time.monotonic())
    uac_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - children_before
    pbx_result = pbx.wait_sampling(3 if uac_result.returncode != 0 else 10)
    problems = sipp_verdict(uac_result, calls, "dialer") + sipp_verdict(pbx_result, calls, "PBX")
    if uac_result.returncode is not None and uac_result.wall > seconds + PACE_GRACE:
        problems.append(
            f"dialer SIPp took {uac_result.wall:.2f} s for a {seconds:g} s step "
            f"(more than {PACE_GRACE:g} s late)"
        )
    step = {
        "side": "sipp",
        "cps": rate,
        "seconds": seconds,
        "calls": calls,
        "ok": min(
            uac_result.count("SuccessfulCall(C)") or 0, pbx_result.count("SuccessfulCall(C)") or 0
        ),
        "passed": not problems,
        "problems": problems,
        "wall_s": round(uac_result.wall, 2),
        "dialer_core_busy": round(uac_cpu / uac_result.wall, 3) if uac_result.wall else None,
        "dialer": sipp_summary(uac_result),
        "pbx": sipp_summary(pbx_result),
        "dialer_socket_drops": uac.drops,
        "pbx_socket_drops": pbx.drops,
    }
    errors = uac_result.errors or pbx_result.errors
    if errors and not step["passed"]:
        step["errors"] = errors[:300]
    return step


# --- the TLS handshake's cost per PBX connection --------------------------------------------


def register_request(transport: str, local: tuple[str, int], host: str, port: int) -> bytes:
    """A first REGISTER, without credentials: the registrar answers it 401 at once."""
    tag = os.urandom(6).hex()
    return (
        f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:dialer@{host}>;tag={tag}\r\n"
        f"To: <sip:dialer@{host}>\r\n"
        f"Call-ID: {tag}@bench\r\n"
        "CSeq: 1 REGISTER\r\n"
        f"Contact: <sip:dialer@{local[0]}:{local[1]};transport={transport}>\r\n"
        "Expires: 60\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def first_answers(kamailio, ca_pem: str, repetitions: int) -> list[float]:
    """Seconds from a new connection's first send to the REGISTER's answer, once each time."""
    from engine.sip.stream import StreamTransport, tls_context

    tls = kamailio.transport == "tls"
    delays = []
    for _ in range(repetitions):
        answered = asyncio.get_running_loop().create_future()

        def on_message(message, source, answered=answered) -> None:
            if not answered.done():
                answered.set_result(time.perf_counter())

        transport = await StreamTransport.open(
            on_message,
            HOST,
            tls=tls_context(ca_pem) if tls else None,
            server_name=kamailio.host,
        )
        try:
            request = register_request(
                kamailio.transport, transport.local_address, kamailio.host, kamailio.port
            )
            began = time.perf_counter()
            transport.send(request, (HOST, kamailio.port))
            async with asyncio.timeout(10):
                delays.append(await answered - began)
        finally:
            transport.close()
    return delays


async def handshake_cost(workdir: Path, repetitions: int) -> dict:
    """Kamailio on TCP, then on TLS (ECDSA P-256 certificate from a test CA): the median time
    to the first REGISTER answer on a new connection, and their difference."""
    from tests.interop.kamailio import Kamailio
    from tests.interop.kamailio import version as kamailio_version
    from tests.kamailio import make_ca, make_server_certificate

    ca = make_ca()
    certificate = make_server_certificate(ca, "localhost")
    medians = {}
    for transport in ("tcp", "tls"):
        directory = workdir / f"kamailio-{transport}"
        directory.mkdir()
        with Kamailio(directory, {"dialer": "secret"}, transport, certificate, ca.cert_pem) as pbx:
            await first_answers(pbx, ca.cert_pem, 2)  # warm up: Kamailio's workers, our imports
            delays = await first_answers(pbx, ca.cert_pem, repetitions)
        medians[transport] = percentile(delays, 50) or 0.0
    return {
        "connections": repetitions,
        "kamailio": kamailio_version(),
        "certificate": "ECDSA P-256",
        "tcp_median_ms": ms(medians["tcp"]),
        "tls_median_ms": ms(medians["tls"]),
        "tls_cost_ms": ms(medians["tls"] - medians["tcp"]),
    }


# --- the run -------------------------------------------------------------------------------


def fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_step(step: dict) -> None:
    verdict = "pass" if step["passed"] else "FAIL"
    if step["side"] == "sipp":
        d, p = step["dialer"], step["pbx"]
        line = (
            f"  SIPp->SIPp {step['cps']:>7g} cps {step['calls']:>7} calls  {verdict}  "
            f"ok {step['ok']:>7}  wall {step['wall_s']:.2f} s  "
            f"dialer core {fmt(step['dialer_core_busy'], '.0%')}  "
            f"retrans dialer/PBX {fmt(d['retransmissions'])}/{fmt(p['retransmissions'])}  "
            f"socket drops dialer/PBX {fmt(step['dialer_socket_drops'])}/"
            f"{fmt(step['pbx_socket_drops'])}"
        )
    else:
        p = step["pbx"]
        line = (
            f"  ours       {step['cps']:>7g} cps {step['calls']:>7} calls  {verdict}  "
            f"ok {step['ok']:>7}  UA core {fmt(step['ua_core_busy'], '.0%')}  "
            f"call p50/p99 {fmt(step['call_p50_ms'], '.1f')}/{fmt(step['call_p99_ms'], '.1f')} ms  "
            f"start lag max {fmt(step['start_lag_max_ms'], '.1f')} ms  "
            f"GC max pause {fmt(step['gc_max_pause_ms'], '.1f')} ms  "
            f"ans->REFER p99 {fmt(step['answer_to_refer_p99_ms'], '.3f')} ms  "
            f"retrans UA/PBX {step['ua_retransmissions']}/{fmt(p['retransmissions'])}  "
            f"socket drops UA/PBX {fmt(step['ua_socket_drops'])}/{fmt(step['pbx_socket_drops'])}"
        )
    print(line, flush=True)
    for problem in step["problems"][:6]:
        print(f"      - {problem}", flush=True)
    if step.get("errors") or step.get("pbx_errors"):
        print(f"      SIPp says: {step.get('errors') or step.get('pbx_errors')}", flush=True)


def ladder(run_step, rates: list[float], deadline: float, step_seconds: float) -> tuple:
    """Run steps at rising rates until one fails or time runs out; (steps, best, why)."""
    steps, best, why = [], 0, "the ladder's top rate passed: the ceiling is higher"
    for rate in rates:
        if time.monotonic() + step_seconds + 5 > deadline:
            why = "time budget spent before a step failed: the ceiling is higher"
            break
        step = run_step(rate)
        print_step(step)
        steps.append(step)
        time.sleep(SETTLE)
        if not step["passed"]:
            why = f"first failed step at {rate:g} cps"
            break
        best = rate
    return steps, best, why


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="5 s steps, fewer of them")
    group.add_argument("--smoke", action="store_true", help="one 2 s step at 20 cps each side")
    parser.add_argument("--step-seconds", type=float, help="seconds per step (default 30)")
    parser.add_argument("--rates", help="our ladder, e.g. 100,500,1000 (instead of the mode's)")
    parser.add_argument("--sipp-rates", help="SIPp's ladder, e.g. 1000,5000")
    parser.add_argument(
        "--latency-seconds", type=float, help="seconds of the 100 cps latency step; 0 skips it"
    )
    parser.add_argument(
        "--transport",
        choices=("udp", "tcp"),
        default="udp",
        help="UDP, or TCP for all three parts (SIPp -t t1), then the TLS handshake's cost",
    )
    parser.add_argument(
        "--handshakes",
        type=int,
        default=None,
        help="connections timed over TCP and over TLS each, with --transport tcp (default 20)",
    )
    parser.add_argument(
        "--budget", type=float, help="stop rising when a ladder would run past this many seconds"
    )
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "default"
    our_rates, sipp_rates, step_seconds, latency_seconds = MODES[mode]
    if args.step_seconds:
        step_seconds = args.step_seconds
    if args.rates:
        our_rates = [float(rate) for rate in args.rates.split(",")]
    if args.sipp_rates:
        sipp_rates = [float(rate) for rate in args.sipp_rates.split(",")]
    if args.latency_seconds is not None:
        latency_seconds = args.latency_seconds
    budget = args.budget or {"default": 570.0, "quick": 130.0, "smoke": 60.0}[mode]
    began = time.monotonic()

    ua_core, sipp_core = pick_cores()
    if ua_core is not None:
        os.sched_setaffinity(0, {ua_core})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # What the UA's socket gets (engine/sip/transport.py asks for RECEIVE_BUFFER; the
        # kernel caps it at net.core.rmem_max and doubles it): SIPp asks for the same.
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        buffer = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2

    transport = args.transport
    print(
        f"bench/cps.py ({mode}): complete call flows per second over {transport.upper()}, "
        "127.0.0.1 only"
    )
    print(
        f"  parser: {engine.sip.parser_kind}; Python {sys.version.split()[0]}; "
        f"steps of {step_seconds:g} s; "
        + (
            f"our UA pinned to core {ua_core}, the SIPp PBX to core {sipp_core} "
            f"(SIPp's dialer side, when SIPp calls SIPp, to core {ua_core})"
            if ua_core is not None
            else "NOT pinned: fewer than two cores available"
        )
    )
    print(f"  socket buffers: SIPp asks for {buffer} bytes, as the UA does", flush=True)

    with tempfile.TemporaryDirectory(prefix="autocall-cps-") as tmp:
        options = Options(Path(tmp), ua_core, sipp_core, buffer, transport)

        def ours(rate: float, seconds: float = step_seconds, wire: bool = False) -> dict:
            return asyncio.run(our_step(rate, seconds, options, wire=wire))

        latency = None
        if latency_seconds:
            print(f"\nanswer -> REFER at 100 cps ({latency_seconds:g} s, a dedicated step):")
            latency = ours(100, latency_seconds, wire=True)
            print_step(latency)
            time.sleep(SETTLE)

        share = (budget - (time.monotonic() - began)) / 2
        print(f"\nour UA, rising rates ({step_seconds:g} s per step):", flush=True)
        our_steps, our_best, our_why = ladder(
            ours, our_rates, time.monotonic() + share, step_seconds
        )
        if latency is None:  # --smoke: the figures of the 20 cps step, said as such
            latency = dict(our_steps[0])
        print(f"\nSIPp calling SIPp, rising rates ({step_seconds:g} s per step):", flush=True)
        sipp_steps, sipp_best, sipp_why = ladder(
            lambda rate: sipp_step(rate, step_seconds, options),
            sipp_rates,
            began + budget,
            step_seconds,
        )
        handshake = None
        if transport == "tcp":
            repetitions = args.handshakes or (5 if mode == "smoke" else 20)
            print(f"\nthe TLS handshake per PBX connection ({repetitions} connections each):")
            handshake = asyncio.run(handshake_cost(Path(tmp), repetitions))
            print(
                f"  connect + first REGISTER answered, median: "
                f"TCP {handshake['tcp_median_ms']:.2f} ms, TLS {handshake['tls_median_ms']:.2f} ms"
                f"; the handshake adds {handshake['tls_cost_ms']:.2f} ms per connection "
                f"({handshake['kamailio']}, {handshake['certificate']})",
                flush=True,
            )

    wire = latency.pop("wire_delays")
    attempt_delays = latency.pop("attempt_delays")
    for step in our_steps:
        step.pop("wire_delays", None)
        step.pop("attempt_delays", None)
    wire_p50, wire_p99 = percentile(wire, 50), percentile(wire, 99)
    att_p50, att_p99 = percentile(attempt_delays, 50), percentile(attempt_delays, 99)
    latency_cps = latency["cps"]
    ratio = round(our_best / sipp_best, 3) if sipp_best else None
    # A ceiling is found between a step that passed and the first that failed; a ladder whose
    # first step failed (started too high) says only that the ceiling is below it.
    sipp_ceiling_found = sipp_why.startswith("first failed") and sipp_best > 0
    evaluated = mode != "smoke"
    p99_for_target = max(v for v in (wire_p99, att_p99) if v is not None) if wire else att_p99
    targets = {
        "ours_at_least_500_cps": (our_best >= TARGET_CPS) if evaluated else None,
        "ours_at_least_half_of_sipp": (
            (ratio is not None and ratio >= 0.5) if evaluated and sipp_ceiling_found else None
        ),
        "answer_to_refer_p99_under_5ms": (
            (p99_for_target is not None and p99_for_target * 1000 < TARGET_P99_MS)
            if evaluated and latency_cps == 100
            else None
        ),
    }
    targets["all_met"] = all(targets.values()) if None not in targets.values() else None

    print("\nall steps:")
    header = f"  {'side':<10} {'cps':>7} {'calls':>7} {'ok':>7}  verdict"
    print(header + "  details")
    for step in ([latency] if latency_seconds else []) + our_steps + sipp_steps:
        side = {"ours": "ours", "sipp": "SIPp->SIPp"}[step["side"]]
        detail = "; ".join(step["problems"][:2]) or (
            f"call p99 {fmt(step.get('call_p99_ms'), '.1f')} ms"
            if step["side"] == "ours"
            else f"wall {step['wall_s']:.2f} s"
        )
        verdict = "pass" if step["passed"] else "FAIL"
        print(
            f"  {side:<10} {step['cps']:>7g} {step['calls']:>7} {step['ok']:>7}  "
            f"{verdict:<7}  {detail}"
        )

    print("\nresults:")
    print(f"  our UA: highest rate sustained with no failed call: {our_best} cps ({our_why})")
    if sipp_best or not sipp_steps:
        print(f"  SIPp calling SIPp (this machine's ceiling): {sipp_best} cps ({sipp_why})")
    else:
        print(
            f"  SIPp calling SIPp (this machine's ceiling): below {sipp_steps[0]['cps']:g} cps "
            "(its first step failed: start its ladder lower, --sipp-rates)"
        )
    if ratio is not None:
        print(f"  ours / SIPp: {ratio:.3f}")
    print(
        f"  answer -> REFER at {latency_cps:g} cps, {len(attempt_delays)} calls: "
        f"attempt stamps p50 {fmt(ms(att_p50), '.3f')} ms, p99 {fmt(ms(att_p99), '.3f')} ms"
        + (
            f"; on the wire p50 {fmt(ms(wire_p50), '.3f')} ms, p99 {fmt(ms(wire_p99), '.3f')} ms"
            if wire
            else " (no wire stamps in --smoke)"
        )
    )
    print(
        "  note: the attempt's stamps are wall-clock floats (sub-microsecond resolution, so not\n"
        "  too coarse), but answer_at is taken once the 200 OK is parsed and matched to its call\n"
        "  (refer_at right after the REFER datagram left): they under-measure. The wire stamps\n"
        "  (perf_counter at the transport: datagram of the 200 OK in, REFER datagram out)\n"
        "  include the parsing; the target uses the larger p99 of the two. Neither includes time\n"
        "  spent in the kernel's socket queue."
    )
    for name, met in targets.items():
        if name == "all_met":
            continue
        word = {True: "met", False: "NOT MET", None: "not evaluated"}[met]
        print(f"  target {name}: {word}")
    if mode == "quick":
        print("  (--quick: 5 s steps; the issue's figure is for 30 s steps)")
    if mode == "smoke":
        print("  (--smoke: a functional check at 20 cps; targets are not evaluated)")

    result = {
        "benchmark": "cps",
        "mode": mode,
        "transport": transport,
        "step_seconds": step_seconds,
        "parser": engine.sip.parser_kind,
        "cores": {
            "ua": ua_core,
            "sipp_pbx": sipp_core,
            "sipp_dialer": ua_core,
            "pinned": ua_core is not None,
        },
        "ours_max_cps": our_best,
        "ours_stopped": our_why,
        "sipp_max_cps": sipp_best,
        "sipp_stopped": sipp_why,
        "ratio_ours_to_sipp": ratio,
        "answer_to_refer": {
            "cps": latency_cps,
            "calls": len(attempt_delays),
            "p50_ms": ms(att_p50),
            "p99_ms": ms(att_p99),
            "wire_p50_ms": ms(wire_p50),
            "wire_p99_ms": ms(wire_p99),
            "wire_calls": len(wire),
        },
        "targets": targets,
        "tls_handshake": handshake,
        "steps": {
            "latency": latency if latency_seconds else None,
            "ours": our_steps,
            "sipp": sipp_steps,
        },
        "elapsed_s": round(time.monotonic() - began, 1),
    }
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
