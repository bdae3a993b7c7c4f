"""A callback through the API (`call_at`): on a new lead (the CRM's web form offers a slot)
and on an existing one; a time in the past or beyond a year is a 422 with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from webapp.extensions import db
from webapp.models import Lead


def _patch(api, lead_id: int, body):
    return api.client.patch(f"/api/v1/leads/{lead_id}", json=body, headers=api.headers())


def _in(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def test_a_new_lead_with_a_callback_slot_is_dialed_then(app, api, tenant_a, wakes):
    received = wakes(tenant_a.id)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    local = at.astimezone(
        timezone(timedelta(hours=3))
    ).isoformat()  # with an offset: the same moment
    response = api.post("/leads", {"phone": "+12125550301", "call_at": local})
    assert response.status_code == 201, response.get_json()
    lead = response.get_json()
    assert datetime.fromisoformat(lead["call_at"]) == at
    assert datetime.fromisoformat(lead["next_attempt_at"]) == at
    assert (lead["status"], lead["attempts"]) == ("new", 0)
    assert received() == ["new_lead"]


@pytest.mark.parametrize(
    ("call_at", "words"),
    [
        (_in(hours=-2), "in the past"),
        (_in(days=367), "more than a year ahead"),
        ("tomorrow at six", "is not a date-time"),
        (1893456000, "must be a date-time string or null"),
    ],
)
def test_a_callback_time_in_the_past_beyond_a_year_or_not_a_time_is_a_422(
    app, api, tenant_a, call_at, words
):
    response = api.post("/leads", {"phone": "+12125550302", "call_at": call_at})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "call_at" and words.split(" a date")[0] in error["message"]
    assert _patch(api, tenant_a.lead_id, {"call_at": call_at}).status_code == 422
    with app.app_context():
        assert db.session.query(Lead).filter_by(phone="+12125550302").count() == 0
        assert db.session.get(Lead, tenant_a.lead_id).callback_at is None


def test_an_existing_lead_gets_a_callback_even_with_its_attempts_used_up(app, api, tenant_a):
    with app.app_context():
        lead = db.session.get(Lead, tenant_a.lead_id)
        lead.status, lead.attempts = "exhausted", 5
        db.session.commit()
    at = _in(hours=3)
    response = _patch(api, tenant_a.lead_id, {"call_at": at})
    assert response.status_code == 200, response.get_json()
    lead = response.get_json()
    assert (lead["status"], lead["attempts"]) == ("retry", 5)
    assert datetime.fromisoformat(lead["call_at"]) == datetime.fromisoformat(at)
    assert api.get(f"/leads/{tenant_a.lead_id}").get_json()["call_at"] == lead["call_at"]
    taken_back = _patch(api, tenant_a.lead_id, {"call_at": None}).get_json()
    assert taken_back["call_at"] is None


def test_no_callback_on_a_lead_on_the_do_not_call_list_nor_one_in_a_call(app, api, tenant_a):
    for status, code in (("do_not_call", 422), ("dialing", 409)):
        with app.app_context():
            db.session.get(Lead, tenant_a.lead_id).status = status
            db.session.commit()
        response = _patch(api, tenant_a.lead_id, {"call_at": _in(hours=1)})
        assert response.status_code == code, status
        assert response.get_json()["error"]["field" if code == 422 else "code"] in (
            "call_at",
            "lead_dialing",
        )
    assert _patch(api, tenant_a.lead_id, {"name": "x"}).status_code == 422
