"""Settings → Webhooks: admins add, edit, test and delete endpoints and may show a secret;
supervisors read the page without secrets or buttons; deliveries and failures show."""

import re

from rq.job import Job
from sqlalchemy import select

from tests.webapp.jobs import emptied
from tests.webapp.webhooks.receiver import Receiver
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import Attempt, WebhookDelivery, WebhookEndpoint
from webapp.services.webhooks import announce, record_finished
from webapp.webhooks import delivery as webhook_delivery

RU = {"Accept-Language": "ru"}
SECRET = re.compile(r"whsec_[A-Za-z0-9_\-]{43}")


def endpoints(app, tenant_id):
    with app.app_context():
        rows = db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.id)
        ).all()
        db.session.expunge_all()
        return rows


def test_an_admin_adds_a_webhook_and_sees_its_secret(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    response = client.post(
        "/settings/webhooks", data={"url": " https://crm.example.com/h ", "active": "y"}
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    secret = SECRET.search(response.get_data(as_text=True)).group(0)
    added = endpoints(app, tenant_a.id)[-1]
    assert (added.url, added.active) == ("https://crm.example.com/h", True)
    assert secret not in added.secret_encrypted  # encrypted at rest
    page = client.get("/settings/webhooks").get_data(as_text=True)
    assert "https://crm.example.com/h" in page and secret not in page
    shown = client.post(f"/settings/webhooks/{added.id}/secret")
    assert shown.headers["Cache-Control"] == "no-store"
    assert secret in shown.get_data(as_text=True)


def test_only_http_urls_are_taken(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    for url, words in (
        ("ftp://crm.example.com/h", "Enter a URL that starts with https:// or http://."),
        ("crm.example.com/h", "Enter a URL that starts with https:// or http://."),
        ("https://user:pw@crm.example.com/", "Leave the user name and password out of the URL."),
        ("https://crm.example.com:99999/", "The port of this URL is not a number"),
        ("", "This field is required."),
    ):
        page = client.post("/settings/webhooks", data={"url": url}).get_data(as_text=True)
        assert words in page, url
        assert not SECRET.search(page)


def test_at_most_five_webhooks(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    for n in range(5):
        client.post("/settings/webhooks", data={"url": f"https://crm.example.com/{n}"})
    assert len(endpoints(app, tenant_a.id)) == 5  # the fixture's and four more
    page = client.get("/settings/webhooks").get_data(as_text=True)
    assert "Add a webhook" not in page
    response = client.post(
        "/settings/webhooks", data={"url": "https://x.example/"}, follow_redirects=True
    )
    assert "at most 5 webhooks" in response.get_data(as_text=True)


def test_an_admin_edits_pauses_and_deletes_a_webhook(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    url = f"/settings/webhooks/{tenant_a.webhook_id}"
    assert "https://crm.alpha.example/hooks" in client.get(url).get_data(as_text=True)
    response = client.post(url, data={"url": "https://crm.alpha.example/v2"})
    assert response.status_code == 302
    [endpoint] = endpoints(app, tenant_a.id)
    assert (endpoint.url, endpoint.active) == ("https://crm.alpha.example/v2", False)
    page = client.get("/settings/webhooks").get_data(as_text=True)
    assert "paused" in page
    response = client.post(f"{url}/delete", follow_redirects=True)
    assert "is deleted" in response.get_data(as_text=True)
    assert endpoints(app, tenant_a.id) == []


def point_at(app, tenant, url: str) -> None:
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, tenant.webhook_id)
        endpoint.url = url
        db.session.commit()


def test_a_test_event_is_tried_at_once_and_shows_on_the_page(app, client, auth, tenant_a):
    with app.app_context():
        retries = emptied(queue(WEBHOOKS)).scheduled_job_registry
    auth.login(tenant_a.admin_email)
    with Receiver(503, 200) as receiver:
        point_at(app, tenant_a, receiver.url)
        response = client.post(
            f"/settings/webhooks/{tenant_a.webhook_id}/test", follow_redirects=True
        )
        assert (
            f"The test event did not reach {receiver.url}: answered 503 Service Unavailable."
        ) in response.get_data(as_text=True)
        [received] = receiver.received  # in the request itself: no worker ran
        response = client.post(
            f"/settings/webhooks/{tenant_a.webhook_id}/test", follow_redirects=True
        )
        assert f"The test event reached {receiver.url}: it answered 200." in response.get_data(
            as_text=True
        )
    assert received.json["event"] == "test" and received.signed_with("alpha-secret")
    assert set(received.json["attempt"]) >= {
        "id",
        "lead_id",
        "lead_external_id",
        "phone",
        "outcome",
        "sip_code",
        "end_at",
        "campaign",
    }
    assert received.json["attempt"]["campaign"] == {"id": 0, "key": "default"}
    page = client.get("/settings/webhooks").get_data(as_text=True)
    deliveries = page.split('data-testid="deliveries"')[1]
    assert "answered 503 Service Unavailable" in deliveries and "waiting" in deliveries
    assert "delivered" in deliveries
    with app.app_context():
        [first] = db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status_code == 503)
        ).all()
    [retry] = [Job.fetch(job_id, connection=retries.connection) for job_id in retries.get_job_ids()]
    assert retry.args == (tenant_a.id, [first.id])  # retried by a job, like any delivery
    failures = client.get("/settings/webhooks?failures=1").get_data(as_text=True)
    assert "answered 503" in failures
    with app.app_context():
        delivery = db.session.get(WebhookDelivery, first.id)
        delivery.delivered_at, delivery.next_try_at, delivery.error = (
            delivery.created_at,
            None,
            None,
        )
        db.session.commit()
    failures = client.get("/settings/webhooks?failures=1").get_data(as_text=True)
    assert "No deliveries yet." in failures


def test_another_tenants_slow_receiver_does_not_delay_a_test_event(
    app, client, auth, tenant_a, tenant_b
):
    """Tenant B's deliveries wait on the `webhooks` queue for a receiver that drips its
    answers; tenant A's test event goes out at once, queued behind none of them."""
    with Receiver(200, drip=1.0) as slow, Receiver(200) as receiver:
        point_at(app, tenant_b, slow.url)
        with app.app_context():
            webhooks = emptied(queue(WEBHOOKS))
            attempt_id = db.session.scalar(
                select(Attempt.id).where(Attempt.tenant_id == tenant_b.id)
            )
            for _ in range(20):
                with db.engine.begin() as connection:
                    ids = record_finished(connection, tenant_b.id, [attempt_id])
                announce(webhooks, tenant_b.id, ids)
        point_at(app, tenant_a, receiver.url)
        auth.login(tenant_a.admin_email)
        response = client.post(
            f"/settings/webhooks/{tenant_a.webhook_id}/test", follow_redirects=True
        )
        assert "The test event reached" in response.get_data(as_text=True)
        assert len(receiver.received) == 1 and slow.received == []
        assert webhooks.count == 20  # tenant B's jobs still wait for the webhooks worker
        webhooks.empty()


def test_a_test_event_to_a_dripping_receiver_ends_at_the_deadline(
    app, client, auth, tenant_a, monkeypatch
):
    monkeypatch.setattr(webhook_delivery, "DEADLINE", 1)
    auth.login(tenant_a.admin_email)
    with Receiver(200, drip=0.25) as slow:
        point_at(app, tenant_a, slow.url)
        response = client.post(
            f"/settings/webhooks/{tenant_a.webhook_id}/test", follow_redirects=True
        )
    page = response.get_data(as_text=True)
    assert f"The test event did not reach {slow.url}: no complete answer in 1 s." in page
    assert len(slow.received) == 1


def test_a_supervisor_reads_without_secrets_or_buttons(client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    page = client.get("/settings/webhooks").get_data(as_text=True)
    assert "https://crm.alpha.example/hooks" in page
    for words in ("Add a webhook", "Send a test event", "Show the secret", "Delete"):
        assert words not in page
    edit = client.get(f"/settings/webhooks/{tenant_a.webhook_id}").get_data(as_text=True)
    assert "readonly" in edit and "Save" not in edit
    assert client.post(f"/settings/webhooks/{tenant_a.webhook_id}/secret").status_code == 403


def test_the_page_speaks_russian(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.get("/settings/webhooks", headers=RU).get_data(as_text=True)
    assert "Вебхуки" in page and "Отправить тестовое событие" in page
    assert "Последние доставки" in page
