"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider.py) over
loopback HTTP: the browser's hops to the provider go through `requests`, the portal's
discovery, key and token requests are its own, and the portal is Flask's test client."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import PASSWORD
from tests.oidc_provider import OpenIDProvider
from webapp.extensions import db
from webapp.models import User

CALLBACK = "http://localhost/login/sso/callback"


@pytest.fixture
def provider():
    with OpenIDProvider(redirect_uris=[CALLBACK]) as provider:
        yield provider


@pytest.fixture
def config_overrides(provider):
    return {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": provider.client.client_id,
        "oidc_client_secret": provider.client.client_secret,
        "oidc_name": "Example ID",
        "public_url": "http://localhost",  # the test client's host: the callback comes back
    }


def sign_in_through(client, provider, start="/login/sso"):
    """The browser's round trip: the portal sends it to the provider, the provider signs
    `provider.user` in and sends it back; returns the portal's answer to the callback."""
    response = client.get(start)
    assert response.status_code == 302
    to_provider = response.headers["Location"]
    assert to_provider.startswith(f"{provider.issuer}/authorize?")
    back = requests.get(to_provider, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    assert back.headers["Location"].startswith(CALLBACK + "?")
    return client.get(back.headers["Location"])


def page_after(client, response) -> str:
    assert response.status_code == 302
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_sign_in_page_offers_the_provider(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Example ID" in page
    page = client.get("/login?next=/leads/").get_data(as_text=True)
    assert 'href="/login/sso?next=/leads/"' in page


def test_an_existing_user_signs_in_and_goes_where_they_were_going(app, client, provider, tenant_a):
    provider.user["email"] = tenant_a.admin_email.upper()  # addresses compare normalized
    response = sign_in_through(client, provider, start="/login/sso?next=/leads/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/leads/"
    assert client.get("/leads/").status_code == 200

    asked = provider.requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["nonce"] and asked["state"]
    assert set(asked["scope"].split()) == {"openid", "email"}
    assert asked["redirect_uri"] == CALLBACK
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == tenant_a.admin_email))
        assert user.last_login_at is not None
        assert user.email_verified_at is not None  # the provider vouched for it


def test_an_unknown_email_is_told_to_ask_the_admin(client, provider, tenant_a):
    provider.user["email"] = "stranger@elsewhere.example"
    page = page_after(client, sign_in_through(client, provider))
    assert "No account uses this email (stranger@elsewhere.example); ask your admin" in page
    assert client.get("/leads/").status_code == 302  # not signed in


def test_an_email_the_provider_has_not_verified_is_refused(client, provider, tenant_a):
    provider.user.update(email=tenant_a.admin_email, email_verified=False)
    page = page_after(client, sign_in_through(client, provider))
    assert "Example ID has not verified your email address" in page
    assert client.get("/leads/").status_code == 302


def test_an_answer_without_an_email_is_refused(client, provider):
    del provider.user["email"]
    page = page_after(client, sign_in_through(client, provider))
    assert "Example ID did not give your email address" in page


def test_a_deactivated_user_is_refused(app, client, provider, tenant_a):
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == tenant_a.operator_email))
        user.active = False
        db.session.commit()
    provider.user["email"] = tenant_a.operator_email
    page = page_after(client, sign_in_through(client, provider))
    assert "This account is deactivated." in page


def test_a_tampered_state_is_refused(client, provider, tenant_a):
    provider.user["email"] = tenant_a.admin_email
    response = client.get("/login/sso")
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    callback = back.headers["Location"]
    state = parse_qs(urlsplit(callback).query)["state"][0]
    response = client.get(callback.replace(state, state[:-1] + ("A" if state[-1] != "A" else "B")))
    assert "This sign-in with Example ID expired or did not start here." in page_after(
        client, response
    )
    assert client.get("/leads/").status_code == 302


def test_a_callback_this_browser_did_not_start_is_refused(app, client, provider, tenant_a):
    """Login CSRF: another browser's code and state, brought here, sign nobody in."""
    provider.user["email"] = tenant_a.admin_email
    other = app.test_client()
    response = other.get("/login/sso")
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    page = page_after(client, client.get(back.headers["Location"]))
    assert "expired or did not start here" in page
    assert client.get("/leads/").status_code == 302


def test_a_cancelled_consent_says_so(client, provider):
    provider.deny = True
    page = page_after(client, sign_in_through(client, provider))
    assert "Example ID did not sign you in. Try again, or sign in with your password." in page


@pytest.mark.parametrize(
    "tamper",
    [
        {"aud": "another-client"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"iss": "http://127.0.0.1:1/not-the-issuer"},
    ],
    ids=["audience", "expired", "issuer"],
)
def test_an_id_token_for_someone_else_or_too_old_is_refused(client, provider, tenant_a, tamper):
    provider.user.update(email=tenant_a.admin_email, **tamper)
    page = page_after(client, sign_in_through(client, provider))
    assert "The answer from Example ID could not be verified" in page
    assert client.get("/leads/").status_code == 302


def test_a_provider_that_cannot_be_reached_says_so(client, provider):
    provider.__exit__()  # the provider stops before the visitor comes
    response = client.get("/login/sso")
    assert "Example ID cannot be reached now." in page_after(client, response)


def test_failed_single_sign_ons_count_against_the_limits(app, client, provider, tenant_a):
    limit = app.extensions["autocall.config"].login_attempts
    provider.user.update(email=tenant_a.admin_email, email_verified=False)
    for _ in range(limit):
        sign_in_through(client, provider)
    provider.user["email_verified"] = True
    page = page_after(client, sign_in_through(client, provider))
    assert "Too many failed sign-ins." in page
    assert client.get("/leads/").status_code == 302


def test_a_first_password_need_not_be_changed_after_single_sign_on(app, client, auth, provider):
    from webapp.models import Role
    from webapp.services.accounts import create_tenant_with_admin, new_user

    with app.app_context():
        tenant = create_tenant_with_admin("Gamma", "admin@gamma.example", PASSWORD).tenant
        new_user("new@gamma.example", PASSWORD, Role.SUPERVISOR, tenant).must_change_password = True
        db.session.commit()
    provider.user["email"] = "new@gamma.example"
    sign_in_through(client, provider)
    assert client.get("/leads/").status_code == 200

    auth.logout()  # with the password, the first password must still be changed
    auth.login("new@gamma.example")
    assert client.get("/leads/").headers["Location"] == "/password"


def test_the_button_and_the_messages_are_in_russian_too(client, provider):
    client.get("/lang/ru")
    assert "Войти через Example ID" in client.get("/login").get_data(as_text=True)
    provider.user["email"] = "stranger@elsewhere.example"
    page = page_after(client, sign_in_through(client, provider))
    assert "Нет учётной записи с этим адресом (stranger@elsewhere.example)" in page
