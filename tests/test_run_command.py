"""The first README command as a new user tries it: `autocall run --demo` (what `./dev run`
runs once the environment is set up) starts everything; once ready, a demo operator signs in
in Chromium, goes on line and sees a lead card within seconds; Ctrl-C (SIGINT to the whole
process group, as a terminal sends it) stops everything cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.test_portal import CHROMIUM, CHROMIUM_ARGS
from tests.ready import wait_until_ready
from webapp import demo

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = subprocess.run(
            ["pgrep", "-P", str(todo.pop())], capture_output=True, text=True
        ).stdout.split()
        found += [int(child) for child in children]
        todo += children
    return found


def test_the_demo_runs_shows_a_card_and_stops_on_sigint(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCALL_")}
    env.update(
        AUTOCALL_VAR_DIR=str(tmp_path / "var"),
        AUTOCALL_WEB_PORT=str(port),
        AUTOCALL_DEMO_PBX_PORT=str(free_port(socket.SOCK_DGRAM)),
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "run", "--demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )  # a terminal's job
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, run, 60)
        children = descendants(run.pid)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(locale="en-US")
            page.goto(f"{base}/login")
            page.fill("input[name=email]", demo.operator_email("101"))
            page.fill("input[name=password]", demo.OPERATOR_PASSWORD)
            page.click("button[type=submit]")
            page.get_by_role("button", name="Go on line").click()
            # Customers ring 2 to 6 s, half of them answer: a card comes within seconds.
            expect(page.locator(".lead-card [data-lead-name]")).to_be_visible(timeout=60_000)
            browser.close()
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        try:
            output, _ = run.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            run.kill()
            output, _ = run.communicate()
    assert run.returncode == 0, output[-3000:]
    assert "demo operator:  operator101@autocall.local" in output
    assert "Traceback" not in output, output[-3000:]  # Redis outlived its users
    alive = [
        pid
        for pid in children
        if Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    ]
    assert alive == [], f"still running after SIGINT: {alive}"
