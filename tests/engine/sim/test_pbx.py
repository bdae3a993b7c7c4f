"""The demo PBX against our own user agent and engine: real SIP over UDP on loopback."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine import probe
from engine.outcomes import Detail, Outcome, TransferResult
from engine.sim.pbx import Behaviour, DemoPBX
from engine.sip.transaction import Timers
from engine.sip.ua import Account

FAST = Behaviour(
    ring_min=0.05,
    ring_max=0.1,
    transfer_delay=0.05,
    by_last_digit=True,
    unreachable_extensions=frozenset({"109"}),
)
SHORT = Timers(t1=0.05, t2=0.2, t4=0.2)


def run(check, password: str = "secret"):
    async def main():
        pbx = DemoPBX("demo", "secret", FAST, seed=1)
        host, port = await pbx.start("127.0.0.1", 0)
        try:
            return await check(Account(host, port, "demo", password), pbx)
        finally:
            pbx.close()

    return asyncio.run(main())


def test_registration_needs_the_right_password():
    async def check(account, pbx):
        return await probe.test_connection(account, local_host="127.0.0.1", timers=SHORT)

    assert run(check).state == "registered"
    wrong = run(check, password="guess")
    assert (wrong.state, wrong.code, wrong.detail) == ("failed", 401, "wrong username or password")


@pytest.mark.parametrize(
    ("number", "outcome", "code"),
    [
        ("+15550000010", Outcome.ANSWERED, 200),
        ("+15550000012", Outcome.BUSY, 486),
        ("+15550000013", Outcome.NO_ANSWER, 487),
        ("+15550000014", Outcome.UNAVAILABLE, 480),
    ],
)
def test_customers_answer_as_their_number_says(number, outcome, code):
    async def check(account, pbx):
        return await probe.test_call(
            account,
            number,
            "101",
            ring_timeout=0.5,
            register=True,
            local_host="127.0.0.1",
            timers=SHORT,
        )

    result = run(check)
    assert (result["outcome"], result["sip_code"]) == (outcome, code)
    if outcome == Outcome.ANSWERED:
        assert result["transfer_result"] == TransferResult.SUCCEEDED
        assert result["refer_to"].startswith("sip:101@127.0.0.1:")


def test_an_unreachable_operator_phone_fails_the_transfer():
    async def check(account, pbx):
        result = await probe.test_call(
            account, "+15550000020", "109", local_host="127.0.0.1", timers=SHORT
        )
        return result, pbx.stats

    result, stats = run(check)
    assert (result["outcome"], result["detail"]) == (
        Outcome.TECHNICAL_ERROR,
        Detail.TRANSFER_FAILED,
    )
    assert result["transfer_sip_code"] == 480 and stats["transfers_failed"] == 1


def test_the_engine_dials_through_the_demo_pbx(app, database_url):
    from tests.engine.dialing import (
        HostThread,
        add_leads,
        dialing_tenant,
        go_on_line,
        leads_of,
        settled,
        wait_until,
    )
    from webapp.config import DEV_ENCRYPTION_KEY
    from webapp.services.secrets import SecretBox

    loop = asyncio.new_event_loop()
    pbx = DemoPBX("demo", "secret", FAST, seed=2)
    address = loop.run_until_complete(pbx.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:

        class Peer:
            host, port = address

        tenant_id, operators = dialing_tenant(
            app,
            "Demo",
            Peer,
            username="demo",
            password_encrypted=SecretBox(DEV_ENCRYPTION_KEY).encrypt("secret"),
            wrap_up_timeout_seconds=1,
        )
        add_leads(app, tenant_id, ["+15550000030", "+15550000032", "+15550000040"])
        go_on_line(app, tenant_id, *operators.values())
        with HostThread(database_url):
            wait_until(settled(app, tenant_id, 3), what="three attempts")
        statuses = {phone: lead.status for phone, lead in leads_of(app, tenant_id).items()}
        assert statuses == {
            "+15550000030": "reached",
            "+15550000032": "retry",
            "+15550000040": "reached",
        }
        assert pbx.stats["registered"] >= 1 and pbx.stats["transferred"] == 2
    finally:
        loop.call_soon_threadsafe(pbx.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


# --- a stopping engine ends its calls (UserAgent.end_calls) ----------------------------------


def end_while(stage: str, number: str, behaviour: Behaviour, picker_wait: float = 0.0):
    """Place one call to `number`, end it (as a stopping engine does) once the PBX's journal
    shows `stage`, and return the attempt, the PBX's journal and how long the end took."""
    from engine.sip.ua import UserAgent

    async def main():
        pbx = DemoPBX("demo", "secret", behaviour, seed=1)
        host, port = await pbx.start("127.0.0.1", 0)
        try:
            async with UserAgent(
                Account(host, port, "demo", "secret"), local_host="127.0.0.1", timers=SHORT
            ) as agent:

                async def picker():
                    await asyncio.sleep(picker_wait)
                    return f"sip:101@{host}:{port}"

                call = asyncio.ensure_future(
                    agent.place_call(f"sip:{number}@{host}:{port}", picker, ring_timeout=30)
                )
                while not any(entry.kind == stage for entry in pbx.journal):
                    await asyncio.sleep(0.01)
                ended_at = asyncio.get_running_loop().time()
                assert agent.end_calls(grace=1.0) == 1
                attempt = await call
                took = asyncio.get_running_loop().time() - ended_at
                await asyncio.sleep(0.1)  # the PBX hears our last words
                return attempt, [entry.kind for entry in pbx.journal], took
        finally:
            pbx.close()

    return asyncio.run(main())


def test_a_ringing_call_is_cancelled():
    attempt, journal, took = end_while("invite", "+15550000013", FAST)  # 3: no answer
    assert (attempt.outcome, attempt.detail) == (Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
    assert journal == ["invite", "cancel"] and took < 1.0


def test_a_customer_who_answers_while_the_operator_is_picked_gets_a_bye_not_a_refer():
    attempt, journal, _ = end_while("answered", "+15550000010", FAST, picker_wait=0.3)
    assert (attempt.outcome, attempt.detail) == (Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
    assert attempt.refer_to is None
    assert journal == ["invite", "answered", "bye"]


def test_a_customer_already_handed_over_stays_transferred():
    slow = Behaviour(ring_min=0.05, ring_max=0.1, transfer_delay=5.0, by_last_digit=True)
    attempt, journal, took = end_while("refer", "+15550000010", slow)
    assert (attempt.outcome, attempt.transfer_result) == (
        Outcome.ANSWERED,
        TransferResult.UNCONFIRMED,
    )
    assert journal == ["invite", "answered", "refer", "bye"] and took < 1.5
