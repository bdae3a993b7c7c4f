"""The console's routes against the real Redis: presence, heartbeats, the card, finishing,
and the event stream with its resume."""

from __future__ import annotations

import json
import re

import pytest

from engine.bus import event
from engine.presence import decode_all
from webapp import bus
from webapp.console import views


@pytest.fixture
def operator_client(client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    return client


def presence_of(app, tenant):
    with app.app_context():
        return decode_all(bus.presence(tenant.id).states())


def test_going_on_and_off_line_and_the_heartbeat(app, operator_client, tenant_a):
    json_headers = {"Accept": "application/json"}
    answer = operator_client.post("/console/on-line", headers=json_headers).get_json()
    assert answer["state"] == "free" and presence_of(app, tenant_a)[tenant_a.operator_id]
    assert operator_client.post("/console/heartbeat").get_json()["state"] == "free"
    page = operator_client.get("/console/").get_data(as_text=True)
    assert "On line: waiting for a call" in page
    # Off line asks for a reason of the company's list.
    refused = operator_client.post(
        "/console/off-line", data={"reason": "nap"}, headers=json_headers
    )
    assert refused.status_code == 400 and presence_of(app, tenant_a)[tenant_a.operator_id]
    answer = operator_client.post(
        "/console/off-line", data={"reason": "lunch"}, headers=json_headers
    ).get_json()
    assert answer["state"] == "off_line" and presence_of(app, tenant_a) == {}
    assert answer["label"] == "Off line · Lunch" and answer["since"] and not answer["notice"]
    assert operator_client.get("/console/card").status_code == 204
    # A console of theirs still open (another tab) cannot put them back on line by itself.
    answer = operator_client.post("/console/heartbeat", data={"on_line": "1"}).get_json()
    assert answer["state"] == "off_line"


def take_for(app, tenant, lead_id):
    """What the engine does when a customer answers: take the operator for the lead."""
    with app.app_context():
        presence = bus.presence(tenant.id)
        presence.take(lead_id)
        return presence


def test_the_card_shows_the_lead_being_transferred_and_finishing_frees_the_operator(
    app, operator_client, tenant_a
):
    operator_client.post("/console/on-line")
    presence = take_for(app, tenant_a, tenant_a.lead_id)
    card = operator_client.get("/console/card").get_data(as_text=True)
    assert "Alpha lead" in card and "Alpha order" in card and "+15550100" in card
    # While the transfer goes on, the button is there but hidden: the console shows it when
    # the transfer succeeds, without reloading the card (and what the operator typed).
    assert re.search(r"<form [^>]*data-wrap-up hidden>", card)
    with app.app_context():
        presence.transferred(tenant_a.operator_id, True, failure_limit=3)
    assert "The call is over" in operator_client.get("/console/card").get_data(as_text=True)
    answer = operator_client.post("/console/wrap-up", headers={"Accept": "application/json"})
    assert (answer.get_json()["state"], answer.get_json()["label"]) == ("wrap_up", "Wrap-up")
    assert "The call is over" not in operator_client.get("/console/card").get_data(as_text=True)
    answer = operator_client.post(
        "/console/finish",
        data={
            "result": "Call back",
            "comment": "after the holidays",
            "call_back_at": "2030-01-02T10:30",
        },
        headers={"Accept": "application/json"},
    ).get_json()
    assert answer["state"] == "free"
    from webapp.extensions import db
    from webapp.models import Attempt, Lead

    with app.app_context():
        lead = db.session.get(Lead, tenant_a.lead_id)
        assert lead.status == "retry" and lead.next_attempt_at.year == 2030
        assert lead.last_operator_id == tenant_a.operator_id
        attempt = db.session.scalar(db.select(Attempt).where(Attempt.lead_id == lead.id))
        assert (attempt.result, attempt.comment) == ("Call back", "after the holidays")
    assert operator_client.post("/console/finish", data={"result": "Made up"}).status_code == 400


def test_hidden_numbers_are_masked_on_the_card(app, operator_client, tenant_a):
    """As the lead's campaign says: another campaign hiding its numbers changes nothing."""
    from webapp.extensions import db
    from webapp.models import Lead, Tenant
    from webapp.services.campaigns import create_campaign

    with app.app_context():
        other = create_campaign(db.session.get(Tenant, tenant_a.id), "TV", "tv", None)
        other.hide_numbers = True
        db.session.commit()
        other_id = other.id
    operator_client.post("/console/on-line")
    take_for(app, tenant_a, tenant_a.lead_id)
    card = operator_client.get("/console/card").get_data(as_text=True)
    assert "+15550100" in card
    with app.app_context():
        db.session.get(Lead, tenant_a.lead_id).campaign_id = other_id
        db.session.commit()
    card = operator_client.get("/console/card").get_data(as_text=True)
    assert "+15550100" not in card and "••••" in card


def test_the_results_are_those_of_the_leads_campaign(app, operator_client, tenant_a):
    from webapp.extensions import db
    from webapp.models import Attempt, Lead, Tenant
    from webapp.services.campaigns import create_campaign

    with app.app_context():
        other = create_campaign(db.session.get(Tenant, tenant_a.id), "TV", "tv", None)
        other.results = "Subscribed\nThinking"
        db.session.get(Lead, tenant_a.lead_id).campaign_id = other.id
        db.session.commit()
    operator_client.post("/console/on-line")
    take_for(app, tenant_a, tenant_a.lead_id)
    card = operator_client.get("/console/card").get_data(as_text=True)
    assert "Subscribed" in card and "Thinking" in card and "Not interested" not in card
    refused = operator_client.post("/console/finish", data={"result": "Not interested"})
    assert refused.status_code == 400  # the default campaign's, not this one's
    answer = operator_client.post(
        "/console/finish", data={"result": "Thinking"}, headers={"Accept": "application/json"}
    )
    assert answer.get_json()["state"] == "free"
    with app.app_context():
        attempt = db.session.scalar(db.select(Attempt).where(Attempt.lead_id == tenant_a.lead_id))
        assert attempt.result == "Thinking"


def test_the_event_stream_resumes_after_the_last_event_id(
    app, operator_client, tenant_a, monkeypatch
):
    monkeypatch.setattr(views, "STREAM_SECONDS", 0.5)
    monkeypatch.setattr(views, "KEEP_ALIVE_SECONDS", 0.2)
    with app.app_context():
        key = bus.keys(tenant_a.id).pops(tenant_a.operator_id)
        connection = bus.client()
        ids = [
            connection.xadd(key, {"event": event("screen_pop", lead_id=n)}).decode()
            for n in (1, 2, 3)
        ]
    response = operator_client.get("/console/events", headers={"Last-Event-ID": ids[0]})
    assert response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    frames = [f for f in body.split("\n\n") if f.startswith("id:")]
    assert [f.split("\n")[0] for f in frames] == [f"id: {ids[1]}", f"id: {ids[2]}"]
    assert json.loads(frames[0].split("data: ")[1])["lead_id"] == 2
    # A new page starts after the newest event: nothing old pops up again.
    body = operator_client.get("/console/events").get_data(as_text=True)
    assert "id:" not in body and ": keep-alive" in body


def test_admins_and_operators_of_other_tenants_get_nothing(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    assert client.get("/console/").status_code == 403
    assert client.post("/console/on-line").status_code == 403


def test_a_console_back_from_a_lost_network_comes_back_on_line_unless_taken_off(
    app, operator_client, tenant_a
):
    operator_client.post("/console/on-line")
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.heartbeat_ttl = 30.0
        presence.sweep(wrap_up_timeout=0, now=__import__("time").time() + 60)  # it expired
        assert presence_of(app, tenant_a) == {}
    # A heartbeat that does not ask to be on line leaves the operator off line.
    assert operator_client.post("/console/heartbeat").get_json()["state"] == "off_line"
    answer = operator_client.post("/console/heartbeat", data={"on_line": "1"}).get_json()
    assert answer["state"] == "free"
    # Taken off line by the engine for failed transfers: the console cannot undo that.
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.take(tenant_a.lead_id)
        presence.transferred(tenant_a.operator_id, False, failure_limit=1)
        bus.client().hset(
            bus.keys(tenant_a.id).off_line_why, tenant_a.operator_id, "failed_transfers"
        )
    answer = operator_client.post("/console/heartbeat", data={"on_line": "1"}).get_json()
    assert answer["state"] == "off_line"
