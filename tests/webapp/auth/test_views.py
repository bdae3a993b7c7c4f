import re

import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Operator, User


def _signup(client, email="boss@newco.example", company="NewCo", password=PASSWORD, **extra):
    data = {"company": company, "email": email, "password": password, "confirm": password}
    return client.post("/signup", data={**data, **extra})


def _link(message, path):
    """The path of the link in the mail, which points at AUTOCALL_PUBLIC_URL (in tests by
    default http://127.0.0.1:5000)."""
    return re.search(rf"http://127\.0\.0\.1:5000(/{path}/\S+)", message.body).group(1)


def test_signup_creates_a_tenant_and_its_admin_and_signs_in(app, client):
    response = _signup(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings/sip")
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "boss@newco.example"))
        assert user.role == "admin"
        assert user.tenant.name == "NewCo"
        assert user.check_password(PASSWORD)
    assert client.get("/settings/sip").status_code == 200


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"company": ""}, "This field is required"),
        ({"email": "not-an-email"}, "Invalid email address"),
        ({"password": "short", "confirm": "short"}, "at least 10 characters"),
        ({"confirm": "something else"}, "The passwords differ"),
    ],
)
def test_signup_explains_bad_input(client, fields, words):
    data = {
        "company": "NewCo",
        "email": "boss@newco.example",
        "password": PASSWORD,
        "confirm": PASSWORD,
        **fields,
    }
    response = client.post("/signup", data=data)
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)


def test_signup_refuses_an_email_in_use(client, tenant_a):
    response = _signup(client, email=tenant_a.admin_email.upper())
    assert "An account with this email already exists." in response.get_data(as_text=True)


def test_login_and_logout(client, auth, tenant_a):
    response = auth.login(tenant_a.admin_email)
    assert response.status_code == 302
    assert client.get("/settings/sip").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/settings/sip").headers["Location"].startswith("/login")


def test_logout_is_post_only(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    response = client.get("/logout")
    assert response.status_code == 405
    assert "cannot be used this way" in response.get_data(as_text=True)


def test_wrong_password_says_so_without_saying_which_part(client, auth, tenant_a):
    for email in (tenant_a.admin_email, "nobody@nowhere.example"):
        response = auth.login(email, "wrong password")
        assert response.status_code == 401
        assert "Wrong email or password." in response.get_data(as_text=True)


@pytest.fixture
def config_overrides():
    return {"login_attempts": 3, "login_attempts_per_ip": 5}


def test_failed_logins_are_rate_limited_per_email_and_per_address(client, auth, tenant_a):
    for _ in range(3):
        assert auth.login(tenant_a.admin_email, "wrong password").status_code == 401
    # Even the right password is refused while the limit holds.
    response = auth.login(tenant_a.admin_email)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # Other addresses from the same client: refused once the per-address limit is hit.
    assert auth.login(tenant_a.supervisor_email, "wrong password").status_code == 401
    assert auth.login(tenant_a.supervisor_email, "wrong password").status_code == 401
    assert auth.login(tenant_a.operator_email).status_code == 429


def test_a_successful_login_resets_the_email_counter(client, auth, tenant_a):
    for _ in range(2):
        auth.login(tenant_a.admin_email, "wrong password")
    assert auth.login(tenant_a.admin_email).status_code == 302
    auth.logout()
    for _ in range(2):
        auth.login(tenant_a.admin_email, "wrong password")
    assert auth.login(tenant_a.admin_email).status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/operators/", "/operators/"),
        ("https://evil.test/", "/"),
        ("//evil.test/", "/"),
        ("/\\evil.test", "/"),
    ],
)
def test_next_only_leads_to_this_site(client, tenant_a, target, expected):
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": tenant_a.admin_email, "password": PASSWORD},
    )
    assert response.headers["Location"] == expected


def test_password_reset(app, client, auth, outbox, tenant_a):
    response = client.post("/reset", data={"email": tenant_a.admin_email})
    assert response.status_code == 302
    assert len(outbox) == 1 and outbox[0].to == tenant_a.admin_email
    link = _link(outbox[0], "reset")
    assert client.get(link).status_code == 200
    new = "a brand new password"
    response = client.post(link, data={"password": new, "confirm": new})
    assert response.headers["Location"].endswith("/login")
    assert auth.login(tenant_a.admin_email, new).status_code == 302
    auth.logout()
    # The link works once: the password it was made for has changed.
    response = client.post(
        link, data={"password": "yet another one!", "confirm": "yet another one!"}
    )
    assert response.headers["Location"].endswith("/reset")


def test_password_reset_does_not_tell_who_has_an_account(client, outbox):
    response = client.post(
        "/reset", data={"email": "nobody@nowhere.example"}, follow_redirects=True
    )
    assert "If an account uses this address" in response.get_data(as_text=True)
    assert outbox == []


def test_a_forged_reset_link_is_refused(client):
    assert client.get("/reset/not-a-token").headers["Location"].endswith("/reset")


def test_operators_must_choose_a_password_at_first_login(app, client, auth, tenant_a):
    with app.app_context():
        operator = db.session.get(Operator, tenant_a.operator_id)
        operator.user.must_change_password = True
        db.session.commit()
    auth.login(tenant_a.operator_email)
    response = client.get("/console/")
    assert response.headers["Location"].endswith("/password")
    page = client.get("/password").get_data(as_text=True)
    assert "Choose your own" in page
    new = "my own password 42"
    response = client.post("/password", data={"current": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 302
    assert client.get("/console/").status_code == 200


def test_changing_the_password_needs_the_current_one_and_a_new_one(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    new = "another good password"
    page = client.post("/password", data={"current": "wrong", "password": new, "confirm": new})
    assert "This is not your current password." in page.get_data(as_text=True)
    page = client.post(
        "/password", data={"current": PASSWORD, "password": PASSWORD, "confirm": PASSWORD}
    )
    assert "different from the current one" in page.get_data(as_text=True)


def test_changing_the_password_ends_other_sessions(app, auth, client, tenant_a):
    other = app.test_client()
    other.post("/login", data={"email": tenant_a.admin_email, "password": PASSWORD})
    assert other.get("/settings/sip").status_code == 200
    auth.login(tenant_a.admin_email)
    new = "another good password"
    client.post("/password", data={"current": PASSWORD, "password": new, "confirm": new})
    assert client.get("/settings/sip").status_code == 200
    assert other.get("/settings/sip").status_code == 302


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(app, client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    assert client.get("/console/").status_code == 200
    with app.app_context():
        db.session.get(Operator, tenant_a.operator_id).user.active = False
        db.session.commit()
    assert client.get("/console/").status_code == 302
    response = auth.login(tenant_a.operator_email)
    assert response.status_code == 403
    assert "deactivated" in response.get_data(as_text=True)


def test_session_cookie_is_http_only_and_same_site(client, auth, tenant_a):
    response = auth.login(tenant_a.admin_email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_single_sign_on_is_off_unless_configured(client):
    assert "Sign in with" not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/sso").status_code == 404
    assert client.get("/login/sso/callback?code=x&state=y").status_code == 404
