"""CSRF protection on every form: the test apps turn it off elsewhere; here it is on."""

import re

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_every_post_without_a_token_is_refused(csrf_app, client, tenant_a):
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={"email": tenant_a.admin_email, "password": PASSWORD, "csrf_token": _token(page)},
    )
    assert response.status_code == 302
    posted = 0
    for rule in csrf_app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint.startswith("api."):
            continue  # the API takes bearer tokens, never cookies: no CSRF to guard against
        url = re.sub(r"<[^>]+>", "1", rule.rule)
        response = client.post(url, data={"name": "x"})
        assert response.status_code == 400, rule.endpoint
        assert "The form expired" in response.get_data(as_text=True)
        posted += 1
    assert posted >= 12


def test_forms_carry_a_token(csrf_app, client):
    for url in ("/login", "/signup", "/reset"):
        assert 'name="csrf_token"' in client.get(url).get_data(as_text=True)
