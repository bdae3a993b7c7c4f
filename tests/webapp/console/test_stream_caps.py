"""The console's event streams are capped per person, per tenant and per web process: the
stream over a cap is refused with 429 (503 for a full process), the reason in the person's
words as JSON, and Retry-After; a closed stream frees its place."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, AuthActions


@pytest.fixture
def config_overrides():
    return {"streams_per_user": 3, "streams_per_tenant": 4, "web_streams": 5}


def signed_in(app, email: str):
    client = app.test_client()
    AuthActions(client).login(email)
    return client


def second_operator(app, tenant) -> str:
    from webapp.extensions import db
    from webapp.models import Tenant
    from webapp.services.accounts import create_operator

    with app.app_context():
        operator = create_operator(
            db.session.get(Tenant, tenant.id),
            name="Second",
            email="second@alpha.example",
            extension="102",
            password=PASSWORD,
            team_id=None,
        )
        operator.user.must_change_password = False
        db.session.commit()
        return operator.user.email


def open_stream(client, **headers):
    return client.get("/console/events", buffered=False, headers=headers)


def test_a_person_opens_three_streams_and_the_fourth_is_refused_until_one_closes(app, tenant_a):
    client = signed_in(app, tenant_a.operator_email)
    held = [open_stream(client) for _ in range(3)]
    assert [r.status_code for r in held] == [200, 200, 200]
    refused = open_stream(client)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert refused.get_json()["error"] == (
        "You have 3 consoles open (tabs or browsers), as many as one person may: close one "
        "and this one connects by itself."
    )
    held[0].close()  # the browser closed that tab
    again = open_stream(client)
    assert again.status_code == 200 and again.mimetype == "text/event-stream"
    for response in (*held[1:], again):
        response.close()
    held = [open_stream(client) for _ in range(3)]
    in_russian = open_stream(client, **{"Accept-Language": "ru"}).get_json()["error"]
    assert in_russian.startswith("У вас открыто консолей: 3")
    for response in held:
        response.close()


def test_a_tenant_holds_at_most_its_cap_of_streams(app, tenant_a):
    first = signed_in(app, tenant_a.operator_email)
    second = signed_in(app, second_operator(app, tenant_a))
    held = [open_stream(first) for _ in range(3)] + [open_stream(second)]
    assert all(r.status_code == 200 for r in held)
    refused = open_stream(second)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert refused.get_json()["error"].startswith("Your company has 4 consoles open")
    held[0].close()
    assert open_stream(second).status_code == 200


def test_a_full_web_process_answers_503_and_its_pages_still_answer(app, tenant_a, tenant_b):
    first = signed_in(app, tenant_a.operator_email)
    other = signed_in(app, tenant_b.operator_email)
    held = [open_stream(first) for _ in range(3)] + [open_stream(other) for _ in range(2)]
    assert all(r.status_code == 200 for r in held)  # five: the process's cap
    refused = open_stream(other)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "The server is busy" in refused.get_json()["error"]
    # The refused stream took no lease: tenant B's operator opens one once a place is free.
    held[0].close()
    assert open_stream(other).status_code == 200
    assert other.get("/console/state").status_code == 200
