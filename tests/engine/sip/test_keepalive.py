"""The keep-alive: OPTIONS to the PBX every interval (engine/sip/keepalive.py), against the
demo PBX on a real socket. The PBX goes away and comes back on the same port; the user
agent's owner hears of both, and what the admin sees says how the PBX answers.

Timers are shortened (T1 = 50 ms: an OPTIONS without an answer gives up after 3.2 s)."""

import asyncio

from engine.sim.pbx import DemoPBX
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)


async def wait_for(condition, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


def test_the_pbx_going_silent_and_coming_back_is_told_at_once():
    async def run():
        pbx = DemoPBX()
        host, port = await pbx.start("127.0.0.1", 0)
        ua = UserAgent(Account(host, port, "demo", "demo"), local_host="127.0.0.1", timers=FAST)
        await ua.start()
        told: list[str] = []
        try:
            ua.keep_alive(
                0.2, on_silent=lambda: told.append("silent"), on_answer=lambda: told.append("back")
            )
            await wait_for(lambda: pbx.stats["options"] >= 2, 5, "OPTIONS every interval")
            state = ua.keepalive
            assert state.status == 200 and state.silent_since is None
            assert state.answer_ms is not None and state.answer_ms >= 0
            answered_at = state.answered_at

            pbx.close()  # the PBX is gone: its port is closed
            await wait_for(lambda: told == ["silent"], 10, "the silence is told")
            assert ua.keepalive.silent_since is not None
            assert ua.keepalive.answered_at == answered_at  # the last answer is kept
            await asyncio.sleep(0.5)
            assert told == ["silent"]  # told once, not every unanswered OPTIONS

            back = DemoPBX()
            await back.start(host, port)
            try:
                await wait_for(lambda: told == ["silent", "back"], 10, "the return is told")
                assert back.stats["options"] >= 1
                assert ua.keepalive.silent_since is None
                assert ua.keepalive.answered_at > answered_at
            finally:
                back.close()
        finally:
            await ua.close()

    asyncio.run(run())


def test_any_final_answer_means_alive_and_closing_stops_the_options():
    async def run():
        pbx = DemoPBX()
        host, port = await pbx.start("127.0.0.1", 0)
        asked: list[str] = []

        def not_found(request, source) -> None:
            asked.append(request.method)
            pbx._reply(request, source, 404, "Not Found")

        pbx._on_options = not_found
        ua = UserAgent(Account(host, port, "demo", "demo"), local_host="127.0.0.1", timers=FAST)
        await ua.start()
        try:
            ua.keep_alive(0.1)
            await wait_for(lambda: ua.keepalive.status == 404, 5, "the 404 is an answer")
            assert ua.keepalive.silent_since is None
        finally:
            await ua.close()
        seen = len(asked)
        assert seen >= 1 and set(asked) == {"OPTIONS"}
        await asyncio.sleep(0.3)
        assert len(asked) == seen  # nothing more after close
        pbx.close()

    asyncio.run(run())
