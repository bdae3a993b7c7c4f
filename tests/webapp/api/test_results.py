"""The operator's result in the API's objects: an attempt carries its result, comment,
call-back time, action and time; a lead its latest result (in a list too, read in one
query for the page)."""

from __future__ import annotations

from webapp import bus


def test_the_attempt_and_the_lead_carry_the_operators_result(app, client, auth, api, tenant_a):
    lead = api.get(f"/leads/{tenant_a.lead_id}").get_json()
    assert lead["last_result"] is None
    [attempt] = api.get(f"/leads/{tenant_a.lead_id}/attempts").get_json()["attempts"]
    assert [attempt[k] for k in ("result", "comment", "call_back_at", "result_action")] == [
        None
    ] * 4

    with app.app_context():
        bus.presence(tenant_a.id).go_on_line(tenant_a.operator_id)
        bus.presence(tenant_a.id).take(tenant_a.lead_id)
    auth.login(tenant_a.operator_email)
    finished = client.post(
        "/console/finish",
        data={"result": "Call back", "comment": "after six", "call_back_at": "2030-01-02T18:00"},
    )
    assert finished.status_code == 302

    [attempt] = api.get(f"/leads/{tenant_a.lead_id}/attempts").get_json()["attempts"]
    assert (attempt["result"], attempt["comment"], attempt["result_action"]) == (
        "Call back",
        "after six",
        "retry",
    )
    assert attempt["call_back_at"] == "2030-01-02T18:00:00+00:00"
    assert attempt["result_at"].endswith("+00:00")
    lead = api.get(f"/leads/{tenant_a.lead_id}").get_json()
    assert lead["last_result"] == {
        "attempt_id": attempt["id"],
        "operator_id": tenant_a.operator_id,
        "result": "Call back",
        "comment": "after six",
        "call_back_at": "2030-01-02T18:00:00+00:00",
        "result_action": "retry",
        "result_at": attempt["result_at"],
    }
    assert lead["next_attempt_at"] == "2030-01-02T18:00:00+00:00"
    created = api.post("/leads", {"phone": "+15550109999"}).get_json()
    listed = {row["id"]: row for row in api.get("/leads").get_json()["leads"]}
    assert listed[tenant_a.lead_id]["last_result"] == lead["last_result"]
    assert listed[created["id"]]["last_result"] is None


def test_a_lead_skipped_in_preview_says_why_and_when(app, api, tenant_a):
    """Preview dialing: the lead's latest skip (engine/preview.py, written on the lead by the
    store's `put_back`) is in the API's lead object, in the list too; null before."""
    assert api.get(f"/leads/{tenant_a.lead_id}").get_json()["last_skip"] is None
    with app.app_context():
        from datetime import UTC, datetime

        from webapp.extensions import db
        from webapp.models import Lead

        lead = db.session.get(Lead, tenant_a.lead_id)
        lead.skip_reason, lead.skipped_at = "wrong_data", datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
        db.session.commit()
    skip = {"reason": "wrong_data", "at": "2030-01-02T09:30:00+00:00"}
    assert api.get(f"/leads/{tenant_a.lead_id}").get_json()["last_skip"] == skip
    listed = {row["id"]: row for row in api.get("/leads").get_json()["leads"]}
    assert listed[tenant_a.lead_id]["last_skip"] == skip
