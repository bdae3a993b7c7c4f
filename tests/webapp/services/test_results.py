"""What an operator's result does (webapp/services/results.py), through the console's Finish
as an operator presses it, on both databases with the real Redis: the campaign's action for
the result (do not call, close, retry after N minutes, nothing), what the attempt keeps, and
the signed `attempt.result` a real HTTP receiver gets, tried again like every webhook."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from tests.webapp.jobs import Wakes, emptied, run_jobs
from tests.webapp.webhooks.receiver import Receiver
from tests.webapp.webhooks.test_delivery import SECRET, deliveries, point_at, run_jobs_until
from webapp import bus
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import Attempt, Campaign, DoNotCall, Lead
from webapp.services.results import Action, ResultAction, actions_for, read_action

JSON = {"Accept": "application/json"}


@pytest.fixture
def config_overrides():
    return {"webhook_retry_seconds": "1,1"}


@pytest.fixture
def operator(app, client, auth, tenant_a):
    """The operator of tenant A, signed in, with the fixture's lead on their card (as the
    engine leaves them after the transfer); no webhook job left from earlier tests."""
    with app.app_context():
        emptied(queue(WEBHOOKS))
        bus.presence(tenant_a.id).go_on_line(tenant_a.operator_id)
        bus.presence(tenant_a.id).take(tenant_a.lead_id)
    auth.login(tenant_a.operator_email)
    return client


def finish(client, **form) -> None:
    answer = client.post("/console/finish", data=form, headers=JSON)
    assert answer.status_code == 200 and answer.get_json()["state"] == "free"


def lead_and_attempt(app, tenant) -> tuple[Lead, Attempt]:
    with app.app_context():
        lead = db.session.get(Lead, tenant.lead_id)
        attempt = db.session.scalar(select(Attempt).where(Attempt.lead_id == lead.id))
        db.session.expunge_all()
        return lead, attempt


def set_lead(app, tenant, **values) -> None:
    with app.app_context():
        lead = db.session.get(Lead, tenant.lead_id)
        for name, value in values.items():
            setattr(lead, name, value)
        db.session.commit()


def test_every_campaign_starts_with_the_default_results_actions(app, tenant_a):
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_a.id))
        assert campaign.result_actions == {
            "Sale": {"action": "close"},
            "Not interested": {"action": "close"},
            "Call back": {"action": "retry", "minutes": 60},
            "Wrong number": {"action": "do_not_call"},
        }


def test_stored_actions_are_read_strictly():
    assert read_action({"action": "retry", "minutes": 30}) == ResultAction(Action.RETRY, 30)
    assert read_action({"action": "close", "minutes": 30}) == ResultAction(Action.CLOSE)
    for bad in (None, "close", {"action": "dance"}, {"action": "retry"}):
        assert read_action(bad) is None
    for minutes in (0, 10081, "5", True):
        assert read_action({"action": "retry", "minutes": minutes}) is None
    chosen = {"Sale": ResultAction(Action.CLOSE), "Gone": ResultAction(Action.DO_NOT_CALL)}
    assert actions_for(["Sale", "Maybe"], chosen) == {"Sale": {"action": "close"}}


def test_a_sale_closes_the_lead_whatever_call_back_time_was_typed(app, operator, tenant_a):
    set_lead(app, tenant_a, status="reached")
    finish(operator, result="Sale", comment="two boxes", call_back_at="2030-01-02T10:30")
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert (lead.status, lead.next_attempt_at) == ("reached", None)
    assert (attempt.result, attempt.comment, attempt.result_action) == (
        "Sale",
        "two boxes",
        "close",
    )
    # What the operator typed is kept, in UTC (the tenant's zone is UTC).
    assert attempt.call_back_at.replace(tzinfo=UTC) == datetime(2030, 1, 2, 10, 30, tzinfo=UTC)
    assert abs(attempt.result_at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)


def test_call_back_without_a_time_retries_after_its_minutes(app, operator, tenant_a):
    set_lead(app, tenant_a, status="reached", attempts=1)
    finish(operator, result="Call back")
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert lead.status == "retry" and lead.last_operator_id == tenant_a.operator_id
    due_in = lead.next_attempt_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(minutes=59) < due_in <= timedelta(minutes=60)
    assert (attempt.result_action, attempt.call_back_at) == ("retry", None)


def test_a_call_back_time_comes_before_the_retry_minutes(app, operator, tenant_a):
    set_lead(app, tenant_a, status="reached", attempts=1)
    finish(operator, result="Call back", call_back_at="2030-01-02T10:30")
    lead, _ = lead_and_attempt(app, tenant_a)
    assert lead.status == "retry"
    assert lead.next_attempt_at.replace(tzinfo=UTC) == datetime(2030, 1, 2, 10, 30, tzinfo=UTC)


def test_a_retry_of_a_lead_with_its_attempts_used_exhausts_it(app, operator, tenant_a):
    set_lead(app, tenant_a, status="reached", attempts=5)  # the campaign's maximum
    finish(operator, result="Call back")
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert (lead.status, lead.next_attempt_at) == ("exhausted", None)
    assert attempt.result_action == "retry"


def test_a_result_without_an_action_leaves_the_lead_as_it_was(app, operator, tenant_a):
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_a.id))
        campaign.results += "\nThinking"
        db.session.commit()
    set_lead(app, tenant_a, status="reached")
    finish(operator, result="Thinking")
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert (lead.status, lead.next_attempt_at) == ("reached", None)
    assert (attempt.result, attempt.result_action) == ("Thinking", None)


def test_a_wrong_number_goes_on_the_do_not_call_list_once(app, operator, tenant_a):
    set_lead(app, tenant_a, status="reached")
    wakes = Wakes(tenant_a.id)
    try:
        finish(operator, result="Wrong number")
        assert "do_not_call" in wakes.types()
    finally:
        wakes.close()
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert (lead.status, attempt.result_action) == ("do_not_call", "do_not_call")
    # The lead comes back to the operator (a second call of the same number, say): no
    # second entry.
    with app.app_context():
        bus.presence(tenant_a.id).take(tenant_a.lead_id)
    finish(operator, result="Wrong number")
    with app.app_context():
        entries = db.session.scalars(
            select(DoNotCall).where(DoNotCall.tenant_id == tenant_a.id)
        ).all()
        assert [(e.number, e.prefix, e.note) for e in entries] == [
            (lead.phone, False, f"Wrong number · lead {lead.id}")
        ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_wrong_number_marked_by_someone_else_at_the_same_moment_is_no_error(
    app, operator, tenant_a
):
    """The number is being put on the list by another transaction (another operator's Finish,
    an admin's paste) not committed yet: our Finish waits on the list's unique index, then
    finds the number there and finishes as usual, no 500; the number is listed once."""
    lead, _ = lead_and_attempt(app, tenant_a)
    with app.app_context():
        other = db.engine.connect()
        other.begin()
        other.execute(sa.text("SELECT set_config('autocall.tenant_id', 'all', true)"))
        other.execute(
            sa.text(
                "INSERT INTO do_not_call (tenant_id, number, prefix, note, created_at) "
                "VALUES (:tenant, :number, false, 'the other one', now())"
            ),
            {"tenant": tenant_a.id, "number": lead.phone},
        )
        answers: list = []
        finishing = threading.Thread(
            target=lambda: answers.append(
                operator.post("/console/finish", data={"result": "Wrong number"}, headers=JSON)
            )
        )
        finishing.start()
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with db.engine.connect() as watcher:
            for _ in range(400):  # until our Finish waits on the index (at most 20 s)
                if watcher.execute(waiting).scalar():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the Finish never waited on the other transaction")
        other.commit()
        other.close()
        finishing.join(30)
    [answer] = answers
    assert answer.status_code == 200 and answer.get_json()["state"] == "free"
    with app.app_context():
        listed = db.session.scalars(select(DoNotCall).where(DoNotCall.number == lead.phone))
        assert [entry.note for entry in listed] == ["the other one"]
        assert db.session.get(Lead, lead.id).status == "do_not_call"


def test_attempt_result_reaches_the_receiver_signed_and_is_retried(app, operator, tenant_a):
    with Receiver(500, 200) as receiver:
        point_at(app, tenant_a, receiver.url)
        finish(operator, result="Call back", comment="after six", call_back_at="2030-01-02T18:00")
        run_jobs_until(app, lambda: len(receiver.received) >= 2)
    first, second = receiver.received
    assert (first.status, second.status) == (500, 200)
    assert first.json == second.json  # the same event, tried again
    assert second.signed_with(SECRET) and not second.signed_with("another-secret")
    body = second.json
    _, attempt = lead_and_attempt(app, tenant_a)
    assert (body["event"], body["v"]) == ("attempt.result", 1)
    sent = body["attempt"]
    assert (sent["id"], sent["lead_id"], sent["operator_id"]) == (
        attempt.id,
        tenant_a.lead_id,
        tenant_a.operator_id,
    )
    assert (sent["result"], sent["comment"], sent["result_action"]) == (
        "Call back",
        "after six",
        "retry",
    )
    assert sent["call_back_at"] == "2030-01-02T18:00:00+00:00"
    assert sent["lead_external_id"] == "alpha-crm-1"
    [row] = deliveries(app, tenant_a.id)
    assert (row.event, row.attempt_id, row.state, row.tries) == (
        "attempt.result",
        attempt.id,
        "delivered",
        2,
    )


def test_no_endpoint_no_delivery_and_an_operator_without_a_lead_finishes(app, operator, tenant_a):
    point_at(app, tenant_a, "http://127.0.0.1:9/hooks", active=False)
    finish(operator, result="Sale")
    assert deliveries(app, tenant_a.id) == []
    finish(operator)  # nothing on the card any more: frees the operator, writes nothing
    run_jobs(app)
    _, attempt = lead_and_attempt(app, tenant_a)
    assert attempt.result == "Sale"


def test_a_russian_operator_reads_the_default_results_in_russian(app, operator, tenant_a):
    """Stored in English, shown in the viewer's language; what is recorded is the stored name,
    which the CRM reads. A tenant's own result is shown as written."""
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.tenant_id == tenant_a.id))
        campaign.results += "\nДумает"
        db.session.commit()
    operator.get("/lang/ru")
    card = operator.get("/console/card").get_data(as_text=True)
    for name, label in (
        ("Sale", "Продажа"),
        ("Not interested", "Не интересно"),
        ("Call back", "Перезвонить"),
        ("Wrong number", "Ошибочный номер"),
        ("Думает", "Думает"),
    ):
        assert f'<option value="{name}">{label}</option>' in card
    finish(operator, result="Sale", comment="две коробки")
    lead, attempt = lead_and_attempt(app, tenant_a)
    assert attempt.result == "Sale"
    with app.app_context():  # the lead is called again: its card lists the attempt before
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=lead.id,
                operator_id=tenant_a.operator_id,
                dialed_uri=attempt.dialed_uri,
                invite_at=datetime.now(UTC) + timedelta(seconds=1),
            )
        )
        db.session.commit()
        bus.presence(tenant_a.id).take(tenant_a.lead_id)
    card = operator.get("/console/card").get_data(as_text=True)
    assert "Предыдущие попытки" in card
    assert re.search(r"<li>[^<]*: отвечен[^<]* · Продажа · две коробки</li>", card), card


def test_the_leads_page_shows_the_result_in_the_admins_language(
    app, client, auth, operator, tenant_a
):
    finish(operator, result="Wrong number", comment="a bakery")
    auth.logout()
    client.get("/lang/ru")
    auth.login(tenant_a.admin_email)
    page = client.get(f"/leads/{tenant_a.lead_id}").get_data(as_text=True)
    assert "<td data-result>Ошибочный номер · a bakery</td>" in page
