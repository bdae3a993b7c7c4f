"""The portal's sign-in defences (docs/portal.md, "Authentication"): links in mail point
at AUTOCALL_PUBLIC_URL whatever the request's Host says; the sign-in throttle counts each
attempt before checking its password, against the portal served over loopback HTTP by a
threaded server with real parallel requests; sign-out ends copied sessions."""

import re
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace

import pytest
import requests
from werkzeug.serving import make_server

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import User

PUBLIC_URL = "https://portal.example.com"
ATTACKER = "198.51.100.66"
LIMIT = 5


@pytest.fixture
def config_overrides():
    # One proxy trusted: X-Forwarded-For names the client, and X-Forwarded-Host would name
    # the host of links built from the request.
    return {
        "public_url": PUBLIC_URL,
        "trusted_proxies": 1,
        "login_attempts": LIMIT,
        "login_attempts_per_ip": 100,
    }


FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def test_a_reset_link_points_at_the_public_url_whatever_the_host(client, outbox, tenant_a):
    client.post("/reset", data={"email": tenant_a.admin_email}, headers=FORGED)
    (message,) = outbox
    assert "evil.example" not in message.body
    assert re.search(rf"{re.escape(PUBLIC_URL)}/reset/\S+", message.body)


def _reconfigure(app, **changes):
    app.extensions["autocall.config"] = replace(app.extensions["autocall.config"], **changes)


def test_a_verification_link_points_at_the_public_url_whatever_the_host(app, client, outbox):
    _reconfigure(app, email_verification=True)
    data = {
        "company": "NewCo",
        "email": "boss@newco.example",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    client.post("/signup", data=data, headers=FORGED)
    (message,) = outbox
    assert "evil.example" not in message.body
    assert re.search(rf"{re.escape(PUBLIC_URL)}/verify/\S+", message.body)


@pytest.mark.parametrize(
    ("public_url", "start"),
    [
        ("https://calls.example.com/", "https://calls.example.com/reset/"),
        ("https://example.com/autocall", "https://example.com/autocall/reset/"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080/reset/"),
    ],
)
def test_the_public_url_may_have_a_port_or_a_path(app, client, outbox, tenant_a, public_url, start):
    _reconfigure(app, public_url=public_url)
    client.post("/reset", data={"email": tenant_a.admin_email}, headers=FORGED)
    assert start in outbox[-1].body


# --- the sign-in throttle ---------------------------------------------------------------


@contextmanager
def _served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _sign_in(portal, email, password, client_address):
    return requests.post(
        f"{portal}/login",
        data={"email": email, "password": password},
        headers={"X-Forwarded-For": client_address},
        allow_redirects=False,
        timeout=60,
    )


def test_parallel_wrong_passwords_get_at_most_the_limit_checked(app, tenant_a):
    """40 wrong passwords at once: only LIMIT are checked (401); the rest are refused
    before any check (429). A 401 is the only answer that checked a password."""
    start = threading.Barrier(40)
    answers = []

    def guess(number):
        start.wait()
        response = _sign_in(portal, tenant_a.admin_email, f"guess {number}", ATTACKER)
        answers.append(response.status_code)

    with _served(app) as portal:
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(answers) == {401: LIMIT, 429: 40 - LIMIT}

        # The attacker's address waits, even with the right password...
        refused = _sign_in(portal, tenant_a.admin_email, PASSWORD, ATTACKER)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        # ...but the person whose address it is signs in from their own.
        mine = _sign_in(portal, tenant_a.admin_email, PASSWORD, "192.0.2.10")
        assert mine.status_code == 302


# --- sessions end on sign-out -----------------------------------------------------------


def _copy_cookies(app, client, *names):
    """Another browser holding copies of `client`'s cookies (as a thief would)."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value)
    return thief


def test_a_copied_session_cookie_stops_working_at_sign_out(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    thief = _copy_cookies(app, client, "session")
    assert thief.get("/settings/sip").status_code == 200
    auth.logout()
    assert thief.get("/settings/sip").headers["Location"].startswith("/login")


def test_a_copied_remember_me_cookie_stops_working_at_sign_out(app, client, tenant_a):
    client.post(
        "/login", data={"email": tenant_a.admin_email, "password": PASSWORD, "remember": "y"}
    )
    thief = _copy_cookies(app, client, "remember_token")  # no session: only the long cookie
    assert thief.get("/settings/sip").status_code == 200
    client.post("/logout")
    assert thief.get("/settings/sip").status_code == 302


def test_signing_out_ends_the_users_other_sessions_too(app, client, auth, tenant_a):
    other = app.test_client()
    other.post("/login", data={"email": tenant_a.admin_email, "password": PASSWORD})
    auth.login(tenant_a.admin_email)
    auth.logout()
    assert other.get("/settings/sip").status_code == 302
    auth.login(tenant_a.admin_email)  # a new sign-in works as before
    assert client.get("/settings/sip").status_code == 200


def test_a_password_reset_ends_every_session(app, client, auth, outbox, tenant_a):
    auth.login(tenant_a.admin_email)
    thief = _copy_cookies(app, client, "session")
    client.post("/reset", data={"email": tenant_a.admin_email})
    link = re.search(r"https://portal\.example\.com(/reset/\S+)", outbox[-1].body).group(1)
    new = "a brand new password"
    client.post(link, data={"password": new, "confirm": new})
    assert thief.get("/settings/sip").status_code == 302
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == tenant_a.admin_email))
        assert user.session_generation == 1
