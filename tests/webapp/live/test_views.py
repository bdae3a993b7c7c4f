"""The live wall: operators' states from presence, today's counters from the attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt


def add_attempt(app, tenant, **values):
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=tenant.id,
                lead_id=tenant.lead_id,
                dialed_uri="sip:+1@pbx",
                invite_at=datetime.now(UTC),
                **values,
            )
        )
        db.session.commit()


def test_the_wall_counts_today_and_shows_each_operator(app, client, auth, tenant_a, tenant_b):
    now = datetime.now(UTC)
    # The fixture's tenant has one answered, transferred attempt already (conftest).
    add_attempt(app, tenant_a, outcome="busy", sip_code=486)
    add_attempt(app, tenant_a, outcome="technical_error", detail="no_free_operator", answer_at=now)
    add_attempt(
        app,
        tenant_a,
        outcome="answered",
        answer_at=now,
        transfer_result="succeeded",
        operator_id=tenant_a.operator_id,
    )
    add_attempt(app, tenant_b, outcome="answered", answer_at=now)  # another tenant's
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=tenant_a.lead_id,
                dialed_uri="sip:+1@pbx",
                outcome="busy",
                invite_at=now - timedelta(days=2),
            )
        )
        db.session.commit()
        presence = bus.presence(tenant_a.id)
        presence.go_on_line(tenant_a.operator_id)
        presence.take(tenant_a.lead_id)
    auth.login(tenant_a.supervisor_email)
    state = client.get("/live/state").get_json()
    assert state["today"]["attempts"] == 4
    assert state["today"]["picked_up"] == 2  # the fixture's attempt has no answer time
    assert (state["today"]["transferred"], state["today"]["abandoned"]) == (2, 1)
    assert state["today"]["abandon_rate"] == 50.0
    [operator] = state["operators"]
    assert (operator["state"], operator["lead"], operator["state_label"]) == (
        "transferring",
        "Alpha lead",
        "call coming",
    )
    assert state["engine_text"] == "Automatic dialing is off."
    page = client.get("/live/").get_data(as_text=True)
    assert "Alpha operator" in page and "call coming" in page


def test_an_operator_taken_off_line_for_failed_transfers_says_why(app, client, auth, tenant_a):
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.go_on_line(tenant_a.operator_id)
        presence.take(tenant_a.lead_id)
        presence.transferred(tenant_a.operator_id, False, failure_limit=1)
        bus.client().hset(
            bus.keys(tenant_a.id).off_line_why, tenant_a.operator_id, "failed_transfers"
        )  # what the engine writes
    auth.login(tenant_a.admin_email)
    client.get("/lang/ru")
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "off_line" and operator["off_line_why"] == "failed_transfers"
    assert "не удавались" in operator["why"]
    with app.app_context():
        bus.presence(tenant_a.id).go_on_line(tenant_a.operator_id)  # back by choice
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "free" and operator["why"] == ""
