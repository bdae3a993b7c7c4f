"""Who may use the API: tokens an admin makes, OAuth clients' tokens; nobody else."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.webapp.api.conftest import Api, bearer
from webapp.extensions import db
from webapp.models import ApiClient, ApiToken
from webapp.services.api_access import create_client


def _is_401(response, words: str) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = response.get_json()["error"]
    assert error["code"] == "unauthorized" and words in error["message"]


def test_a_token_opens_the_api_of_its_tenant(api, tenant_a):
    response = api.get("/leads")
    assert response.status_code == 200
    assert [lead["id"] for lead in response.get_json()["leads"]] == [tenant_a.lead_id]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer act_",
        "Bearer act_1",
        "Bearer act_1_",
        "Bearer act_x_secret",
        "Bearer act_99999999999999999999_secret",
        "Bearer something-else",
        "Basic YWRtaW46YWRtaW4=",
    ],
)
def test_no_or_a_malformed_token_is_a_401(client, tenant_a, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/leads", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_wrong_secret_is_a_401(api):
    token_id = api.token.split("_")[1]
    _is_401(Api(api.client, f"act_{token_id}_wrong").get("/leads"), "not valid")
    _is_401(Api(api.client, api.token + "x").get("/leads"), "not valid")
    _is_401(Api(api.client, None).get("/leads"), "Send a token")


def test_only_a_hash_is_stored_and_use_is_noted(app, api):
    token_id = int(api.token.split("_")[1])
    secret = api.token.split("_", 2)[2]
    with app.app_context():
        token = db.session.get(ApiToken, token_id)
        assert token.last_used_at is None
        assert secret not in token.secret_hash and len(token.secret_hash) == 64
    api.get("/leads")
    with app.app_context():
        assert db.session.get(ApiToken, token_id).last_used_at is not None


def test_a_revoked_token_is_a_401(app, client, auth, api, tenant_a):
    assert api.get("/leads").status_code == 200
    auth.login(tenant_a.admin_email)
    token_id = int(api.token.split("_")[1])
    response = client.post(f"/settings/api/tokens/{token_id}/revoke")
    assert response.status_code == 302
    auth.logout()
    _is_401(api.get("/leads"), "revoked")


def test_a_session_does_not_count_and_the_bearer_decides(app, client, auth, tenant_a, tenant_b):
    """Tenant A's admin signed in, with tenant B's token: the request acts for B only."""
    auth.login(tenant_a.admin_email)
    _is_401(client.get("/api/v1/leads"), "Send a token")
    api_b = Api(client, bearer(app, tenant_b.id))
    leads = api_b.get("/leads").get_json()["leads"]
    assert [lead["id"] for lead in leads] == [tenant_b.lead_id]


def test_the_api_needs_no_csrf_token(app, api):
    app.config["WTF_CSRF_ENABLED"] = True
    response = api.post("/leads", {"phone": "+12125551234"})
    assert response.status_code == 201


# --- OAuth 2 client credentials ---------------------------------------------------------


@pytest.fixture
def oauth_client(app, tenant_a):
    with app.app_context():
        client, secret = create_client(tenant_a.id, "Website")
        return client.client_id, secret


def _token(client, client_id, secret, how="basic"):
    data = {"grant_type": "client_credentials"}
    headers = {}
    if how == "basic":
        pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    else:
        data |= {"client_id": client_id, "client_secret": secret}
    return client.post("/api/v1/oauth/token", data=data, headers=headers)


@pytest.mark.parametrize("how", ["basic", "form"])
def test_a_client_trades_its_secret_for_a_short_lived_token(
    app, client, tenant_a, oauth_client, how
):
    response = _token(client, *oauth_client, how=how)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    token = response.get_json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["access_token"].startswith("act_")
    leads = Api(client, token["access_token"]).get("/leads").get_json()["leads"]
    assert [lead["id"] for lead in leads] == [tenant_a.lead_id]
    with app.app_context():
        row = db.session.get(ApiToken, int(token["access_token"].split("_")[1]))
        assert row.client_id is not None and row.expires_at is not None
        assert db.session.get(ApiClient, row.client_id).last_used_at is not None


@pytest.mark.parametrize(
    "credentials",
    [("acc_{id}", "wrong"), ("acc_999999", "{secret}"), ("nonsense", "{secret}"), ("", "")],
)
def test_a_wrong_client_id_or_secret_gets_no_token(client, oauth_client, credentials):
    client_id, secret = oauth_client
    number = client_id.removeprefix("acc_")
    given = [part.format(id=number, secret=secret) for part in credentials]
    response = _token(client, *given, how="form")
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    response = _token(client, *given, how="basic")
    assert response.status_code in (400, 401)


def test_only_the_client_credentials_grant(client, oauth_client):
    client_id, secret = oauth_client
    response = client.post(
        "/api/v1/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        },
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_an_expired_token_is_a_401(app, client, oauth_client):
    access = _token(client, *oauth_client).get_json()["access_token"]
    with app.app_context():
        row = db.session.get(ApiToken, int(access.split("_")[1]))
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    _is_401(Api(client, access).get("/leads"), "expired")
    fresh = _token(client, *oauth_client).get_json()["access_token"]  # sweeps expired ones
    with app.app_context():
        client_id = db.session.get(ApiToken, int(fresh.split("_")[1])).client_id
        assert len(db.session.scalars(select(ApiToken).filter_by(client_id=client_id)).all()) == 1
    _is_401(Api(client, access).get("/leads"), "expired")  # (SQLite may reuse the id)


def test_deleting_a_client_revokes_its_tokens(app, client, auth, tenant_a, oauth_client):
    access = _token(client, *oauth_client).get_json()["access_token"]
    auth.login(tenant_a.admin_email)
    number = oauth_client[0].removeprefix("acc_")
    assert client.post(f"/settings/api/clients/{number}/delete").status_code == 302
    auth.logout()
    _is_401(Api(client, access).get("/leads"), "not valid")
    assert _token(client, *oauth_client).status_code == 401
    with app.app_context():
        assert db.session.scalars(select(ApiToken).filter_by(client_id=int(number))).all() == []


def test_staff_have_no_tenant_and_so_no_api(client, auth, staff_email, tenant_a):
    auth.login(staff_email)
    _is_401(client.get("/api/v1/leads"), "Send a token")
    assert client.get("/settings/api").status_code == 403
