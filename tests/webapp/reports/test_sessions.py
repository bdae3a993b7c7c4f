"""Operators' on-line sessions, written where they go on and off line: the console's routes,
and the engine's taking them off line (heartbeat expiry, the failed-transfer limit), which it
tells on the operator's stream of events exactly as engine/dialer.py does. Real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.bus import event
from engine.presence import Presence
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, OperatorSession
from webapp.services import sessions

JSON = {"Accept": "application/json"}


@pytest.fixture
def operator_client(client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    return client


def sessions_of(app, tenant) -> list[tuple]:
    with app.app_context():
        rows = db.session.scalars(
            select(OperatorSession)
            .where(OperatorSession.tenant_id == tenant.id)
            .order_by(OperatorSession.id)
        ).all()
        return [(row.operator_id, row.off_line_at is None, row.off_line_why) for row in rows]


def engine_tells_off_line(app, tenant, reason: str) -> float:
    """What the engine does (engine/dialer.py `_tell`): the event on the operator's stream."""
    with app.app_context():
        connection = bus.client()
        key = bus.keys(tenant.id).pops(tenant.operator_id)
        payload = event("operator_off_line", operator_id=tenant.operator_id, reason=reason)
        event_id = connection.xadd(key, {"event": payload}, maxlen=100, approximate=True)
        return int(event_id.decode().partition("-")[0]) / 1000


def test_the_console_opens_and_closes_a_session(app, operator_client, tenant_a):
    operator_client.post("/console/on-line", headers=JSON)
    operator_client.post("/console/on-line", headers=JSON)  # twice: still one session
    operator_client.post("/console/heartbeat", data={"on_line": "1"})
    assert sessions_of(app, tenant_a) == [(tenant_a.operator_id, True, None)]
    operator_client.post("/console/off-line", data={"reason": "lunch"}, headers=JSON)
    assert sessions_of(app, tenant_a) == [(tenant_a.operator_id, False, "break")]
    operator_client.post("/console/on-line", headers=JSON)
    assert [open_ for _op, open_, _why in sessions_of(app, tenant_a)] == [False, True]
    operator_client.post("/console/off-line", data={"reason": "end_of_shift"}, headers=JSON)
    assert [why for _op, _open, why in sessions_of(app, tenant_a)] == ["break", "end_of_shift"]


def test_heartbeat_expiry_told_by_the_engine_closes_the_session_at_that_time(
    app, operator_client, tenant_a
):
    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():  # the engine's sweep, 60 s on: the console went quiet
        changed = bus.presence(tenant_a.id).sweep(wrap_up_timeout=0, now=time.time() + 60)
        assert changed == [str(tenant_a.operator_id).encode(), b"off_line"]
    told_at = engine_tells_off_line(app, tenant_a, "heartbeat")
    with app.app_context():
        assert sessions.close_ended_all() == 1  # the roll-up job's part
        row = db.session.scalar(select(OperatorSession))
        assert row.off_line_why == "heartbeat"
        off = row.off_line_at.replace(tzinfo=row.off_line_at.tzinfo or UTC)
        assert abs(off.timestamp() - told_at) < 0.002
    # The console comes back (network again) and wants to be on line: a new session.
    operator_client.post("/console/heartbeat", data={"on_line": "1"})
    assert [open_ for _op, open_, _why in sessions_of(app, tenant_a)] == [False, True]


def test_the_failed_transfer_limit_closes_the_session_when_the_console_next_acts(
    app, operator_client, tenant_a
):
    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.take(tenant_a.lead_id)
        assert presence.transferred(tenant_a.operator_id, False, failure_limit=1) == b"off_line"
    engine_tells_off_line(app, tenant_a, "failed_transfers")
    operator_client.post("/console/on-line", headers=JSON)  # back, by their own choice
    assert sessions_of(app, tenant_a) == [
        (tenant_a.operator_id, False, "failed_transfers"),
        (tenant_a.operator_id, True, None),
    ]


def test_a_console_quiet_with_no_engine_to_sweep_it_ends_at_its_last_heartbeat(
    app, operator_client, tenant_a
):
    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():
        keys = bus.keys(tenant_a.id)
        last = time.time() - 600  # the last heartbeat, ten minutes ago
        row = db.session.scalar(select(OperatorSession))
        row.on_line_at = datetime.now(UTC) - timedelta(minutes=20)  # on line since
        db.session.commit()
        bus.client().zadd(keys.seen, {str(tenant_a.operator_id): last})
        bus.client().hset(keys.presence, tenant_a.operator_id, f"free|{last}||0")
        sessions.close_ended_all()
        row = db.session.scalar(select(OperatorSession))
        off = row.off_line_at.replace(tzinfo=row.off_line_at.tzinfo or UTC)
        assert row.off_line_why == "heartbeat"
        assert abs(off.timestamp() - (last + Presence.DEFAULT_HEARTBEAT_TTL)) < 0.002


def test_an_operator_gone_without_a_word_is_closed_when_found(app, operator_client, tenant_a):
    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():
        bus.presence(tenant_a.id).go_off_line(tenant_a.operator_id)  # e.g. deactivated
        before = datetime.now(UTC)
        sessions.close_ended_all()
        row = db.session.scalar(select(OperatorSession))
        off = row.off_line_at.replace(tzinfo=row.off_line_at.tzinfo or UTC)
        assert row.off_line_why == "gone" and off >= before - timedelta(seconds=1)


def a_customer_transferred_to_the_operator(app, operator_client, tenant_a) -> None:
    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.take(tenant_a.lead_id)
        presence.transferred(tenant_a.operator_id, True, failure_limit=3)


def test_the_call_is_over_notes_the_end_of_the_talk_once(app, operator_client, tenant_a):
    a_customer_transferred_to_the_operator(app, operator_client, tenant_a)
    operator_client.post("/console/wrap-up", headers=JSON)
    with app.app_context():
        first = db.session.scalar(select(Attempt.talk_ended_at))
        assert first is not None
        assert db.session.scalar(select(Attempt.wrap_up_ended_at)) is None  # wrapping up
    operator_client.post("/console/finish", data={"result": "Sale"}, headers=JSON)
    with app.app_context():
        talk_ended, wrap_up_ended = db.session.execute(
            select(Attempt.talk_ended_at, Attempt.wrap_up_ended_at)
        ).one()
        assert talk_ended == first  # kept, not moved
        assert wrap_up_ended is not None and wrap_up_ended >= talk_ended  # Finish: its end


def test_finish_straight_after_the_talk_is_a_wrap_up_of_nothing(app, operator_client, tenant_a):
    a_customer_transferred_to_the_operator(app, operator_client, tenant_a)
    operator_client.post("/console/finish", data={"result": "Sale"}, headers=JSON)
    with app.app_context():
        talk_ended, wrap_up_ended = db.session.execute(
            select(Attempt.talk_ended_at, Attempt.wrap_up_ended_at)
        ).one()
        assert talk_ended is not None and wrap_up_ended == talk_ended


def test_the_engine_tells_when_it_takes_a_quiet_console_off_line(app, database_url, pbx):
    """engine/dialer.py: the sweep that drops a console quiet for the heartbeat TTL puts an
    `operator_off_line` event (reason `heartbeat`) on the operator's stream; the session
    closes at its time."""
    from tests.engine.dialing import HostThread, dialing_tenant, wait_until

    peer = pbx("pbx.xml", calls=5, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Quiet", peer, extensions=("101",))
    operator_id = operators["101"]
    with app.app_context():
        bus.presence(tenant_id).go_on_line(operator_id)
        sessions.on_line(tenant_id, operator_id, now=datetime.now(UTC) - timedelta(minutes=5))
        quiet_since = time.time() - 100  # the last heartbeat
        bus.client().zadd(bus.keys(tenant_id).seen, {str(operator_id): quiet_since})
        key = bus.keys(tenant_id).pops(operator_id)

    def told() -> bool:
        with app.app_context():
            return any(
                b"operator_off_line" in fields[b"event"] for _id, fields in bus.client().xrange(key)
            )

    with HostThread(database_url):
        wait_until(told, what="the engine's operator_off_line event")
    with app.app_context():
        _id, fields = bus.client().xrevrange(key, count=1)[0]
        assert b'"reason":"heartbeat"' in fields[b"event"]
        assert sessions.close_ended_all() == 1
        row = db.session.scalar(select(OperatorSession))
        assert row.off_line_why == "heartbeat"
        off = row.off_line_at.replace(tzinfo=row.off_line_at.tzinfo or UTC)
        assert quiet_since < off.timestamp() <= time.time()


def test_the_cron_job_closes_ended_sessions_and_rolls_up(app, operator_client, tenant_a):
    """roll_up_reports, as the cron scheduler enqueues it, run by a real RQ worker."""
    from tests.webapp.jobs import run_jobs
    from webapp.jobs.queues import queue
    from webapp.models import ReportRollup
    from webapp.services import rollup

    operator_client.post("/console/on-line", headers=JSON)
    with app.app_context():
        bus.presence(tenant_a.id).go_off_line(tenant_a.operator_id)
        row = db.session.get(Attempt, 1)  # the fixture's attempt, two hours ago, finished
        row.invite_at = datetime.now(UTC) - timedelta(hours=2)
        db.session.commit()
        job = queue().enqueue(rollup.roll_up_reports)
    run_jobs(app)
    with app.app_context():
        assert job.get_status(refresh=True) == "finished" and job.return_value() >= 1
        assert sessions_of(app, tenant_a) == [(tenant_a.operator_id, False, "gone")]
        assert db.session.get(ReportRollup, tenant_a.id) is not None
