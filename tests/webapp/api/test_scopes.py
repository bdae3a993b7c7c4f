"""Scopes and expiry of API credentials: reading needs `read`, creating and changing leads
and the do-not-call list needs `leads`; an expired token is told so."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.webapp.api.conftest import Api
from webapp.extensions import db
from webapp.models import ApiToken, DoNotCall, Lead
from webapp.services.api_access import create_client, create_token

WRITES = [
    ("post", "/leads", {"phone": "+12125551234"}),
    ("post", "/leads/bulk", {"leads": [{"phone": "+12125551234"}]}),
    ("post", "/leads/{lead}/cancel", None),
    ("post", "/do-not-call", {"number": "+12125551234"}),
    ("delete", "/do-not-call/{entry}", None),
]
READS = ["/leads", "/leads/{lead}", "/leads/{lead}/attempts", "/do-not-call"]


def _api(app, client, tenant_id, scopes, **extra) -> Api:
    with app.app_context():
        return Api(client, create_token(tenant_id, "scoped", scopes, **extra)[1])


def _call(api, method, path, body, ids):
    path = path.format(**ids)
    return api.delete(path) if method == "delete" else api.post(path, body)


@pytest.fixture
def ids(app, tenant_a) -> dict:
    with app.app_context():
        entry = DoNotCall(tenant_id=tenant_a.id, number="+12125550000", prefix=False, note="")
        db.session.add(entry)
        db.session.commit()
        return {"lead": tenant_a.lead_id, "entry": entry.id}


def _counts(app) -> tuple[int, int, list[str]]:
    with app.app_context():
        leads = db.session.scalar(select(func.count()).select_from(Lead))
        entries = db.session.scalar(select(func.count()).select_from(DoNotCall))
        statuses = db.session.scalars(select(Lead.status)).all()
        return leads, entries, statuses


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_read_token_cannot_change_leads_or_the_list(
    app, client, tenant_a, ids, method, path, body
):
    api = _api(app, client, tenant_a.id, ["read"])
    before = _counts(app)
    response = _call(api, method, path, body, ids)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_scope"
    assert "'leads'" in error["message"] and "creating and changing leads" in error["message"]
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="AutoCall API", error="insufficient_scope", scope="leads"'
    )
    assert _counts(app) == before  # nothing changed


@pytest.mark.parametrize("path", READS)
def test_a_read_token_reads(app, client, tenant_a, ids, path):
    api = _api(app, client, tenant_a.id, ["read"])
    assert api.get(path.format(**ids)).status_code == 200


@pytest.mark.parametrize("path", READS)
def test_a_leads_token_cannot_read(app, client, tenant_a, ids, path):
    """A website's form gets `leads` only: if its token leaks, the leads stay unread."""
    api = _api(app, client, tenant_a.id, ["leads"])
    response = api.get(path.format(**ids))
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_scope" and "'read'" in error["message"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_leads_token_changes(app, client, tenant_a, ids, method, path, body):
    api = _api(app, client, tenant_a.id, ["leads"])
    assert _call(api, method, path, body, ids).status_code in (200, 201, 204)


def test_tokens_made_without_a_choice_have_both_scopes(app, api):
    assert api.get("/leads").status_code == 200
    assert api.post("/leads", {"phone": "+12125551234"}).status_code == 201
    with app.app_context():
        assert db.session.get(ApiToken, int(api.token.split("_")[1])).scopes == "read leads"


def test_an_expired_token_is_told_it_expired(app, client, tenant_a):
    api = _api(app, client, tenant_a.id, ["read"], expires_at=datetime.now(UTC) + timedelta(1))
    assert api.get("/leads").status_code == 200
    with app.app_context():
        token = db.session.get(ApiToken, int(api.token.split("_")[1]))
        token.expires_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        db.session.commit()
    response = api.get("/leads")
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "unauthorized"
    assert error["message"] == (
        "The token expired at 2026-01-02T03:04:05+00:00; an admin makes a new one in "
        "Settings → API access."
    )
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# --- OAuth 2 clients ---------------------------------------------------------------------


def _oauth_token(client, client_id, secret, scope=None):
    data = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/api/v1/oauth/token", data=data, headers={"Authorization": f"Basic {pair}"})


def test_a_clients_tokens_have_its_scopes_or_fewer(app, client, tenant_a):
    with app.app_context():
        row, secret = create_client(tenant_a.id, "Reports", ["read"])
        client_id = row.client_id
    answer = _oauth_token(client, client_id, secret).get_json()
    assert answer["scope"] == "read"
    api = Api(client, answer["access_token"])
    assert api.get("/leads").status_code == 200
    assert api.post("/leads", {"phone": "+12125551234"}).status_code == 403
    refused = _oauth_token(client, client_id, secret, scope="leads")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_scope"
    unknown = _oauth_token(client, client_id, secret, scope="read admin")
    assert unknown.status_code == 400 and unknown.get_json()["error"] == "invalid_scope"


def test_a_client_may_ask_for_fewer_scopes(app, client, tenant_a):
    with app.app_context():
        row, secret = create_client(tenant_a.id, "Website")
        client_id = row.client_id
    answer = _oauth_token(client, client_id, secret, scope="leads").get_json()
    assert answer["scope"] == "leads"
    api = Api(client, answer["access_token"])
    assert api.get("/leads").status_code == 403
    assert api.post("/leads", {"phone": "+12125551234"}).status_code == 201
