"""The console's callbacks: "call back myself" keeps the callback for the operator, and the
console lists the operator's callbacks for today; the leads page shows scheduled callbacks
with a filter, and a lead's page says a callback is dialed whatever its attempts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from webapp import bus
from webapp.extensions import db
from webapp.models import Lead, Tenant


@pytest.fixture
def operator_client(client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    return client


def _finish(app, client, tenant, **form):
    """The operator is given the tenant's lead and finishes it with this form."""
    client.post("/console/on-line")
    with app.app_context():
        presence = bus.presence(tenant.id)
        presence.take(tenant.lead_id)
        presence.transferred(tenant.operator_id, True, failure_limit=3)
        zone = ZoneInfo(db.session.get(Tenant, tenant.id).time_zone)
    now = datetime.now(zone).strftime("%Y-%m-%dT%H:%M")  # today, in the company's zone
    answer = client.post(
        "/console/finish",
        data={"result": "Call back", "comment": "after lunch", "call_back_at": now, **form},
        headers={"Accept": "application/json"},
    )
    assert answer.get_json()["state"] == "free"


def test_call_back_myself_keeps_the_callback_and_the_console_lists_it(
    app, operator_client, tenant_a
):
    assert "No callbacks for today." in operator_client.get("/console/").get_data(as_text=True)
    _finish(app, operator_client, tenant_a, call_back_myself="1")
    with app.app_context():
        lead = db.session.get(Lead, tenant_a.lead_id)
        assert lead.status == "retry" and lead.callback_at is not None
        assert lead.callback_at == lead.next_attempt_at
        assert lead.callback_operator_id == tenant_a.operator_id
    listed = operator_client.get("/console/callbacks").get_data(as_text=True)
    row = listed[listed.index(f'data-callback-lead="{tenant_a.lead_id}"') :].split("</tr>")[0]
    assert "Alpha lead" in row and "Call back" in row and "after lunch" in row
    assert "yours" in row
    assert f'data-callback-lead="{tenant_a.lead_id}"' in operator_client.get("/console/").get_data(
        as_text=True
    )
    # When the callback is dialed and handed to the operator, the card says what it is.
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.take(tenant_a.lead_id)
        presence.transferred(tenant_a.operator_id, True, failure_limit=3)
    card = operator_client.get("/console/card").get_data(as_text=True)
    assert "data-card-callback" in card and "A callback the customer was promised" in card


def test_a_callback_for_anyone_is_not_kept_for_the_operator(app, operator_client, tenant_a):
    _finish(app, operator_client, tenant_a)
    with app.app_context():
        lead = db.session.get(Lead, tenant_a.lead_id)
        assert lead.callback_at is not None and lead.callback_operator_id is None
    row = operator_client.get("/console/callbacks").get_data(as_text=True)
    assert f'data-callback-lead="{tenant_a.lead_id}"' in row and "yours" not in row


def test_admins_see_scheduled_callbacks_on_the_leads_page(app, client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    _finish(app, client, tenant_a, call_back_myself="1")
    auth.logout()
    auth.login(tenant_a.admin_email)
    with app.app_context():
        other = Lead(tenant_id=tenant_a.id, phone="+15550109999", name="No callback")
        db.session.add(other)
        db.session.commit()
    for kind in ("scheduled", "personal"):
        page = client.get(f"/leads/?callback={kind}").get_data(as_text=True)
        assert "Alpha lead" in page and "No callback" not in page, kind
        assert "personal callback" in page
    everyone = client.get("/leads/").get_data(as_text=True)
    assert "Alpha lead" in everyone and "No callback" in everyone
    detail = client.get(f"/leads/{tenant_a.lead_id}").get_data(as_text=True)
    assert "data-callback-note" in detail and "counts as an attempt" in detail
    assert "Alpha operator" in detail.split("data-callback-note")[1].split("</div>")[0]
