"""What each result does, set on a campaign's Calling tab: a row per saved result with its
action (and the minutes of a retry), in the viewer's language; rows of results no longer
listed are dropped; a retry without its minutes is refused; supervisors read them."""

from __future__ import annotations

from sqlalchemy import select

from tests.webapp.campaigns.test_calling import CALLING, _default_id
from tests.webapp.campaigns.test_views import give_an_account
from webapp.extensions import db
from webapp.models import Campaign


def rows(**actions) -> dict:
    """The Calling tab's rows: actions={"Sale": ("close", "")}, in that order."""
    data = {}
    for index, (name, (action, minutes)) in enumerate(actions.items()):
        data[f"actions-{index}-name"] = name
        data[f"actions-{index}-action"] = action
        data[f"actions-{index}-minutes"] = minutes
    return data


def actions_of(app, campaign_id: int) -> dict:
    with app.app_context():
        return db.session.get(Campaign, campaign_id).result_actions


def test_the_rows_show_the_default_results_and_their_actions(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    campaign_id = _default_id(app, tenant_a.id)
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert 'id="result-actions"' in page
    assert 'name="actions-2-name" type="hidden" value="Call back"' in page
    assert 'name="actions-2-minutes" type="number" value="60"' in page
    assert '<option selected value="do_not_call">' in page
    client.get("/lang/ru")
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert "Перезвонить" in page and "Ошибочный номер" in page


def test_saving_keeps_the_actions_of_the_results_still_listed(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    with app.app_context():
        account = give_an_account(tenant_a.id).id
    campaign_id = _default_id(app, tenant_a.id)
    data = {
        **CALLING,
        "sip_account_id": str(account),
        "results": "Sale\nCall back\nWrong number\nBought elsewhere",
        **rows(
            Sale=("", ""),
            **{"Not interested": ("close", "")},
            **{"Call back": ("retry", "15")},
            **{"Wrong number": ("do_not_call", "99")},
        ),
    }
    answer = client.post(f"/campaigns/{campaign_id}/calling", data=data)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    # Not interested is gone from the list: so is its action; the minutes of an action
    # that is no retry are not kept; a new result does nothing until it is given an action.
    assert actions_of(app, campaign_id) == {
        "Call back": {"action": "retry", "minutes": 15},
        "Wrong number": {"action": "do_not_call"},
    }
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert 'name="actions-3-name" type="hidden" value="Bought elsewhere"' in page

    for minutes, error in (("", "A retry needs its minutes"), ("10081", "From 1 to 10080")):
        data.update(rows(**{"Sale": ("retry", minutes)}))
        answer = client.post(f"/campaigns/{campaign_id}/calling", data=data)
        assert answer.status_code == 200 and error in answer.get_data(as_text=True)
    assert actions_of(app, campaign_id)["Call back"] == {"action": "retry", "minutes": 15}


def test_supervisors_read_the_actions_without_changing_them(app, client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    campaign_id = _default_id(app, tenant_a.id)
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert 'disabled id="actions-0-action"' in page
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.id == campaign_id))
        before = dict(campaign.result_actions)
    client.post(f"/campaigns/{campaign_id}/calling", data={**CALLING, **rows(Sale=("", ""))})
    assert actions_of(app, campaign_id) == before
