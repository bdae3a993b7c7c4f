"""The console's side of preview dialing: the card of a previewed lead has Call now and Skip
(with the reasons) and no Finish; the choice is kept for the engine only for the lead the
operator previews; anything else is refused."""

from __future__ import annotations

from engine.presence import PREVIEWING
from tests.conftest import AuthActions
from webapp import bus


def test_the_choice_is_kept_only_for_the_lead_the_operator_previews(app, tenant_a):
    client = app.test_client()
    AuthActions(client).login(tenant_a.operator_email)
    lead = str(tenant_a.lead_id)
    assert (
        client.post("/console/preview", data={"lead_id": lead, "choice": "call"}).status_code == 409
    )
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.go_on_line(tenant_a.operator_id)
        # what the engine does for a preview campaign's lead (engine/dialer.py _offer)
        assert int(presence.take(tenant_a.lead_id, state=PREVIEWING)) == tenant_a.operator_id

    card = client.get("/console/card").get_data(as_text=True)
    assert "Call now" in card and "Skip" in card and "The lead's data is wrong" in card
    assert "Finish the lead" not in card
    assert client.get("/console/state").get_json()["label"] == "A lead to look at: call or skip"

    bad = [
        {"lead_id": lead, "choice": "dial"},
        {"lead_id": lead, "choice": "skip", "reason": "bored"},
        {"lead_id": "x", "choice": "call"},
    ]
    for form in bad:
        assert client.post("/console/preview", data=form).status_code == 400, form
    other = str(tenant_a.lead_id + 1000)
    assert (
        client.post("/console/preview", data={"lead_id": other, "choice": "call"}).status_code
        == 409
    )
    answer = client.post(
        "/console/preview",
        data={"lead_id": lead, "choice": "skip", "reason": "not_now"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200 and answer.get_json()["state"] == PREVIEWING
    with app.app_context():
        kept = bus.client().hgetall(bus.keys(tenant_a.id).preview_choices)
    assert kept == {str(tenant_a.operator_id).encode(): f"{lead}|skip|not_now".encode()}
