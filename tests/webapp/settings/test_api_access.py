"""Settings → API access: admins make and revoke tokens and OAuth clients; a secret is
shown once and only its hash is kept; supervisors read the page."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import ApiClient, ApiToken
from webapp.models.api import as_utc

RU = {"Accept-Language": "ru"}
BEARER = re.compile(r"act_\d+_[A-Za-z0-9_\-]{43}")
BOTH = {"token-read": "y", "token-leads": "y"}


def test_an_admin_makes_a_token_that_is_shown_once(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    response = client.post("/settings/api/tokens", data={"token-name": "Bitrix CRM", **BOTH})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    bearer = BEARER.search(page).group(0)
    assert "shown only once" in page and "Bitrix CRM" in page
    answer = client.get("/api/v1/leads", headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 200
    again = client.get("/settings/api").get_data(as_text=True)
    assert "Bitrix CRM" in again and bearer not in again
    assert f"act_{bearer.split('_')[1]}_…" in again  # only the start is shown
    with app.app_context():
        token = db.session.get(ApiToken, int(bearer.split("_")[1]))
        assert token.tenant_id == tenant_a.id and bearer.split("_", 2)[2] not in token.secret_hash


def test_a_token_needs_a_name(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.post("/settings/api/tokens", data={"token-name": " "}).get_data(as_text=True)
    assert "This field is required." in page and not BEARER.search(page)


def test_an_admin_revokes_a_token(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    response = client.post(
        f"/settings/api/tokens/{tenant_a.api_token_id}/revoke", follow_redirects=True
    )
    assert "is revoked" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ApiToken, tenant_a.api_token_id) is None


def test_an_admin_makes_and_deletes_an_oauth_client(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.post(
        "/settings/api/clients",
        data={"client-name": "Website", "client-read": "y", "client-leads": "y"},
    ).get_data(as_text=True)
    client_id = re.search(r"acc_\d+", page).group(0)
    secret = re.search(r"client_secret: <code class=\"preview\">([^<]+)</code>", page).group(1)
    token = client.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert token.status_code == 200
    assert secret not in client.get("/settings/api").get_data(as_text=True)
    number = int(client_id.removeprefix("acc_"))
    assert client.post(f"/settings/api/clients/{number}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(ApiClient, number) is None
        assert db.session.scalars(select(ApiToken).filter_by(client_id=number)).all() == []


def test_a_supervisor_reads_but_cannot_change(client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    page = client.get("/settings/api").get_data(as_text=True)
    assert "Alpha CRM" in page and "Alpha website" in page
    assert "Create a token" not in page and "Revoke" not in page
    assert client.post("/settings/api/tokens", data={"token-name": "x"}).status_code == 403


def test_the_page_in_russian(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.get("/settings/api", headers=RU).get_data(as_text=True)
    for words in (
        "Доступ к API",
        "API-токены",
        "Создать токен",
        "Отозвать",
        "лиды",
        "Права",
        "Срок действия",
        "через 30 дней",
    ):
        assert words in page, words


def test_an_admin_chooses_a_tokens_scopes_and_expiry(app, client, auth, tenant_a):
    """A website's form gets `leads` only, for 30 days: it adds leads and reads none."""
    auth.login(tenant_a.admin_email)
    page = client.post(
        "/settings/api/tokens",
        data={"token-name": "Website form", "token-leads": "y", "token-expires": "30"},
    ).get_data(as_text=True)
    bearer = BEARER.search(page).group(0)
    headers = {"Authorization": f"Bearer {bearer}"}
    answer = client.post("/api/v1/leads", json={"phone": "+12125551234"}, headers=headers)
    assert answer.status_code == 201
    answer = client.get("/api/v1/leads", headers=headers)
    assert answer.status_code == 403 and "'read'" in answer.get_json()["error"]["message"]
    with app.app_context():
        token = db.session.get(ApiToken, int(bearer.split("_")[1]))
        assert token.scopes == "leads"
        days = (as_utc(token.expires_at) - datetime.now(UTC)) / timedelta(days=1)
        assert 29.9 < days <= 30
    listed = client.get("/settings/api").get_data(as_text=True)
    row = listed[listed.index("<td>Website form</td>") :]
    row = row[: row.index("</tr>")]
    assert "<code>leads</code>" in row and "never" not in row
    crm = listed[listed.index("<td>Alpha CRM</td>") :]
    assert "<code>read leads</code>" in crm[: crm.index("</tr>")]  # made before: both, never
    assert "never" in crm[: crm.index("</tr>")]


def test_an_expired_token_says_so_in_the_list(app, client, auth, tenant_a):
    with app.app_context():
        token = db.session.get(ApiToken, tenant_a.api_token_id)
        token.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    auth.login(tenant_a.admin_email)
    page = client.get("/settings/api").get_data(as_text=True)
    row = page[page.index("<td>Alpha CRM</td>") :]
    assert "<strong>expired " in row[: row.index("</tr>")]


def test_a_token_or_client_needs_a_scope_and_a_known_lifetime(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.post("/settings/api/tokens", data={"token-name": "CRM"}).get_data(as_text=True)
    assert "Choose at least one scope." in page and not BEARER.search(page)
    page = client.post(
        "/settings/api/tokens", data={"token-name": "CRM", **BOTH, "token-expires": "10000"}
    ).get_data(as_text=True)
    assert "Not a valid choice." in page and not BEARER.search(page)
    page = client.post("/settings/api/clients", data={"client-name": "Site"}).get_data(as_text=True)
    assert "Choose at least one scope." in page and "client_secret:" not in page
    with app.app_context():
        assert len(db.session.scalars(select(ApiToken)).all()) == 1  # tenant A's CRM only
        assert len(db.session.scalars(select(ApiClient)).all()) == 1


def test_a_client_gets_the_scopes_chosen(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    page = client.post(
        "/settings/api/clients", data={"client-name": "Reports", "client-read": "y"}
    ).get_data(as_text=True)
    client_id = re.search(r"acc_\d+", page).group(0)
    secret = re.search(r"client_secret: <code class=\"preview\">([^<]+)</code>", page).group(1)
    token = client.post(
        "/api/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).get_json()
    assert token["scope"] == "read"
    listed = client.get("/settings/api").get_data(as_text=True)
    row = listed[listed.index("<td>Reports</td>") :]
    assert "<code>read</code>" in row[: row.index("</tr>")]
