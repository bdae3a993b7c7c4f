"""The engine in predictive mode against SIPp behaves as the call-centre simulator says it
will for the same tenant: it keeps more calls in flight than it has operators (progressive
pacing never does), it holds a customer who finds every operator busy for the campaign's
abandon tolerance as the simulator does (`abandon_tolerance`) and abandons no more than the
simulator within a small run's tolerance, and its pacer learns from the calls and the
operators' handle and wrap-up times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engine.sim.callcentre import Workload, pacer_class, simulate
from engine.store import CampaignSettings
from tests.engine.dialing import (
    HostThread,
    add_leads,
    attempts_of,
    dialing_tenant,
    finish_as_they_come,
    go_on_line,
)
from tests.engine.test_dialer import overlap
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.models import Attempt, Lead
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox

OPERATORS = ("101", "102", "103")
Pacer = pacer_class()  # the engine's
LEADS = 90
#: Three in ten customers answer (last digit 0, after `RING_MS`); the others ring until the
#: engine's one-second ring timeout (last digit 3).
ANSWERING = [n % 10 < 3 for n in range(LEADS)]
RING_MS = 300
#: Customers reached yesterday, none abandoned: the measured abandon rate is low.
HISTORY = 300
#: Seconds each operator spends in wrap-up (their console says the talk is over at once).
WRAP_UP = 0.3
#: Seconds an answered customer waits for an operator: the campaign's default, 2 s.
TOLERANCE = CampaignSettings(0).abandon_tolerance


def the_same_tenant_simulated() -> dict:
    workload = Workload.from_dict(
        {
            "name": "the SIPp run",
            "duration": 600,
            "leads": LEADS,
            "operators": len(OPERATORS),
            "answer_probability": sum(ANSWERING) / LEADS,
            "ring_time": {
                "answered": {"constant": RING_MS / 1000},
                "unanswered": {"constant": 1.0},
            },
            "talk_time": {"uniform": [0.1, 0.4]},  # REFER, NOTIFY, then the test's wrap-up
            "wrap_up_time": {"constant": WRAP_UP},
            "abandon_tolerance": TOLERANCE,
            "ceilings": {"max_calls_at_once": 30, "calls_per_second": 10},
        }
    )
    pacer = Pacer("predictive", 1.0, 30, 10.0, 0.0, 3.0)
    pacer.set_window(HISTORY, 0)  # what the engine reads from the database
    return simulate(workload, "predictive", seed=1, pacer=pacer)


def a_clean_history(app, tenant_id: int, answered: int) -> None:
    """Yesterday's calls: `answered` customers reached, none abandoned (the engine reads
    them from the database as the measured abandon rate over the regulatory window)."""
    with app.app_context():
        [lead_id] = add_leads(app, tenant_id, ["+15559999990"])
        yesterday = datetime.now(UTC) - timedelta(hours=12)
        for _ in range(answered):
            db.session.add(
                Attempt(
                    tenant_id=tenant_id,
                    lead_id=lead_id,
                    dialed_uri="sip:x",
                    outcome="answered",
                    invite_at=yesterday,
                    answer_at=yesterday,
                    end_at=yesterday,
                )
            )
        db.session.execute(update(Lead).where(Lead.id == lead_id).values(status="reached"))
        db.session.commit()


def test_predictive_engine_behaves_as_the_simulator_says(app, database_url, pbx):
    simulated = the_same_tenant_simulated()
    assert simulated["peak_in_flight"] > len(OPERATORS)  # what the simulator says

    peer = pbx("pbx.xml", calls=LEADS * 2, timeout=120, fill={"ring_ms": RING_MS})
    tenant_id, operators = dialing_tenant(
        app,
        "Acme",
        peer,
        extensions=OPERATORS,
        pacing_mode="predictive",
        max_calls_at_once=30,
        max_calls_per_second=10,
        abandon_rate_cap_percent=3.0,
    )
    a_clean_history(app, tenant_id, HISTORY)
    add_leads(app, tenant_id, [f"+1555000{n:03d}{0 if a else 3}" for n, a in enumerate(ANSWERING)])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url) as host:
        # Every lead (and the history's) ends; each operator wraps up for WRAP_UP seconds.
        finish_as_they_come(app, tenant_id, LEADS + 1, timeout=90, wrap_up=WRAP_UP)
        (pacer,) = host.host.engines[tenant_id].pacers.values()  # the default campaign's
        assert pacer.mode == "predictive"
        learned = (
            pacer.attempts,
            pacer.answer_probability,
            pacer.handled_count,
            pacer.wrap_ups,
            pacer.wrap_up_time,
        )

    attempts = [a for a in attempts_of(app, tenant_id) if a.dialed_uri != "sip:x"]
    assert len(attempts) == LEADS
    answered = [a for a in attempts if a.answer_at is not None]
    abandoned = [a for a in attempts if a.detail == "no_free_operator"]
    assert len(answered) == sum(ANSWERING)
    # More calls at once than operators: progressive would never start a fourth.
    assert overlap(attempts) > len(OPERATORS)
    assert abs(overlap(attempts) - simulated["peak_in_flight"]) <= 2  # as many as simulated
    # Abandons: no more than the simulator's, give or take two calls of a short run, and
    # under the cap on the same terms.
    assert len(abandoned) <= simulated["abandoned"] + 2
    assert len(abandoned) <= 0.03 * len(answered) + 2
    # The pacer heard of every attempt, learned the answer rate and the handle times.
    attempts_seen, answer_probability, handled, wrap_ups, wrap_up_time = learned
    assert attempts_seen == LEADS
    assert 0.2 < answer_probability < 0.4
    assert handled >= len(answered) - len(abandoned) - len(OPERATORS)
    # Wrap-ups seen in the operators' presence (a tick of 100 ms may miss a few), and their
    # length: WRAP_UP, plus up to a tick of the test's and one of the engine's.
    assert wrap_ups >= handled // 2
    assert WRAP_UP - 0.01 < wrap_up_time < WRAP_UP + 0.3

    # The measured abandon rate the engine reads over the regulatory window.
    store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY))
    try:
        day_ago = datetime.now(UTC) - timedelta(days=1)
        assert store.abandon_counts(tenant_id, day_ago) == (HISTORY + len(answered), len(abandoned))
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        assert store.abandon_counts(tenant_id, hour_ago) == (len(answered), len(abandoned))
        assert store.abandon_counts(tenant_id, datetime.now(UTC) + timedelta(seconds=1)) == (0, 0)
        assert store.abandon_counts(tenant_id + 1, day_ago) == (0, 0)  # another tenant's
    finally:
        store.close()


def held_and_abandoned(tolerance: float) -> dict:
    """What the simulator says of two customers dialed for each free operator (a multiplier
    of 2, one operator), all answering together: with a tolerance the second waits for the
    operator's wrap-up to end, without one it is abandoned."""
    workload = Workload.from_dict(
        {
            "name": "two for one",
            "duration": 600,
            "leads": HELD_LEADS,
            "operators": 1,
            "answer_probability": 1.0,
            "ring_time": {
                "answered": {"constant": RING_MS / 1000},
                "unanswered": {"constant": 1.0},
            },
            "talk_time": {"uniform": [0.1, 0.4]},
            "wrap_up_time": {"constant": HELD_WRAP_UP},
            "abandon_tolerance": tolerance,
        }
    )
    return simulate(workload, "multiplier", seed=1, multiplier=2.0)


HELD_LEADS = 10
HELD_WRAP_UP = 0.5


def test_the_engine_holds_an_answered_customer_as_the_simulator_does(app, database_url, pbx):
    simulated = held_and_abandoned(TOLERANCE)
    # What the hold is worth, in the simulator: half the customers abandoned without it.
    assert held_and_abandoned(0)["abandoned"] == HELD_LEADS // 2
    assert simulated["abandoned"] == 0

    peer = pbx("pbx.xml", calls=HELD_LEADS * 2, timeout=120, fill={"ring_ms": RING_MS})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="multiplier", call_multiplier=2.0
    )
    add_leads(app, tenant_id, [f"+1555000{n:03d}0" for n in range(HELD_LEADS)])
    go_on_line(app, tenant_id, *operators.values())
    with HostThread(database_url):
        finish_as_they_come(app, tenant_id, HELD_LEADS, timeout=90, wrap_up=HELD_WRAP_UP)

    attempts = attempts_of(app, tenant_id)
    assert len(attempts) == HELD_LEADS
    abandoned = [a for a in attempts if a.detail == "no_free_operator"]
    assert len(abandoned) <= simulated["abandoned"] + 1
    # Customers who found the operator busy were held, not let go: transferred once the
    # operator was free, within the tolerance.
    held = [
        a
        for a in attempts
        if a.outcome == "answered" and (a.refer_at - a.answer_at).total_seconds() > 0.2
    ]
    assert len(held) >= HELD_LEADS // 2 - 1 - len(abandoned)
    assert all((a.refer_at - a.answer_at).total_seconds() < TOLERANCE + 0.5 for a in held)
