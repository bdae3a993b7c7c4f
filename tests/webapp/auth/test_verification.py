"""Email verification: off by default (see test_views), this module turns it on."""

import re

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def config_overrides():
    return {"email_verification": True}


def test_new_accounts_confirm_their_address_before_signing_in(client, auth, outbox):
    response = client.post(
        "/signup",
        data={
            "company": "NewCo",
            "email": "boss@newco.example",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "Check your mail" in response.get_data(as_text=True)
    assert client.get("/settings/sip").status_code == 302  # not signed in

    response = auth.login("boss@newco.example")
    assert response.status_code == 403
    assert "Confirm your email address first" in response.get_data(as_text=True)
    assert len(outbox) == 2  # the sign-up mail and a fresh one

    link = re.search(r"http://127\.0\.0\.1:5000(/verify/\S+)", outbox[-1].body).group(1)
    assert client.get(link).headers["Location"].endswith("/login")
    assert auth.login("boss@newco.example").status_code == 302


def test_a_forged_verification_link_is_refused(client):
    response = client.get("/verify/forged", follow_redirects=True)
    assert "This link has expired" in response.get_data(as_text=True)
