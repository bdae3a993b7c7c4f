"""bench/cps.py runs end to end: one 2 s step at 20 calls per second for our UA and for SIPp
calling SIPp, over UDP and over TCP (with the TLS handshake's cost). A functional check of the
benchmark and its JSON line, never a timing one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KEYS = {
    "benchmark",
    "mode",
    "transport",
    "step_seconds",
    "parser",
    "cores",
    "ours_max_cps",
    "sipp_max_cps",
    "ratio_ours_to_sipp",
    "answer_to_refer",
    "targets",
    "steps",
}


def test_smoke_run_prints_its_figures_as_json():
    assert shutil.which("sipp"), "SIPp is not installed: ./dev test installs Debian's sip-tester"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cps.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])

    assert not KEYS - result.keys(), f"missing keys: {KEYS - result.keys()}"
    assert result["benchmark"] == "cps" and result["mode"] == "smoke"
    assert result["transport"] == "udp" and result["tls_handshake"] is None
    latency_keys = {"cps", "calls", "p50_ms", "p99_ms", "wire_p50_ms", "wire_p99_ms"}
    assert not latency_keys - result["answer_to_refer"].keys()
    target_keys = {
        "ours_at_least_500_cps",
        "ours_at_least_half_of_sipp",
        "answer_to_refer_p99_under_5ms",
        "all_met",
    }
    assert not target_keys - result["targets"].keys()

    [ours] = result["steps"]["ours"]
    [sipp] = result["steps"]["sipp"]
    for step in (ours, sipp):
        assert step["cps"] == 20 and step["calls"] == 40
        assert step["passed"], step["problems"]
        assert step["ok"] == 40
    assert result["ours_max_cps"] == 20 and result["sipp_max_cps"] == 20
    # every call went through the transfer, so the attempt's stamps exist for each one
    assert result["answer_to_refer"]["calls"] == 40


def test_smoke_run_over_tcp_with_the_tls_handshake():
    """`--transport tcp`: our UA and both SIPps over TCP (SIPp's -t t1), the ratio, then the
    TLS handshake's cost measured against Kamailio over TCP and TLS. Figures are only read,
    never judged."""
    assert shutil.which("sipp"), "SIPp is not installed: ./dev test installs Debian's sip-tester"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cps.py"), "--smoke", "--transport", "tcp"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])

    assert not KEYS - result.keys(), f"missing keys: {KEYS - result.keys()}"
    assert (result["mode"], result["transport"]) == ("smoke", "tcp")
    [ours] = result["steps"]["ours"]
    [sipp] = result["steps"]["sipp"]
    for step in (ours, sipp):
        assert step["passed"], step["problems"]
        assert step["ok"] == step["calls"] == 40
    assert result["ratio_ours_to_sipp"] == 1.0
    assert any(line.startswith("  ours / SIPp: ") for line in lines)
    handshake = result["tls_handshake"]
    assert handshake["connections"] == 5 and "kamailio" in handshake["kamailio"]
    for key in ("tcp_median_ms", "tls_median_ms", "tls_cost_ms"):
        assert isinstance(handshake[key], float), handshake
    assert any("the handshake adds" in line for line in lines)
