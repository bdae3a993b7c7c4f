import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Operator, Team, User


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _new(client, **fields):
    data = {
        "name": "Anna",
        "email": "anna@alpha.example",
        "extension": "102",
        "team_id": "0",
        "password": "first password 1",
        **fields,
    }
    return client.post("/operators/new", data=data)


def test_list_shows_operators_and_teams(client, admin):
    page = client.get("/operators/").get_data(as_text=True)
    assert "Alpha operator" in page and "Alpha team" in page and "101" in page


def test_add_an_operator_who_must_change_the_password(app, client, admin):
    response = _new(client, team_id=str(admin.team_id))
    assert response.status_code == 302
    with app.app_context():
        operator = db.session.scalar(db.select(Operator).where(Operator.extension == "102"))
        assert operator.name == "Anna"
        assert operator.team_id == admin.team_id
        assert operator.user.role == "operator"
        assert operator.user.tenant_id == admin.id
        assert operator.user.must_change_password is True


def test_a_taken_extension_is_explained_in_plain_words(client, admin):
    response = _new(client, extension="101")
    assert response.status_code == 200
    assert "Extension 101 already belongs to Alpha operator." in response.get_data(as_text=True)


def test_another_tenants_extension_is_free_here(client, admin, tenant_b):
    assert _new(client, extension="101", email="x@alpha.example").status_code == 200
    assert _new(client, extension="101", email="x@alpha.example").status_code == 200
    # ... because our own 101 exists; a new number is fine even though Bravo uses 102.
    assert _new(client, extension="555").status_code == 302


def test_a_taken_email_is_explained(client, admin, tenant_b):
    response = _new(client, email=tenant_b.admin_email)
    assert "An account with this email already exists." in response.get_data(as_text=True)


def test_an_operator_cannot_be_put_in_a_team_of_another_tenant(client, admin, tenant_b):
    response = _new(client, team_id=str(tenant_b.team_id))
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)


def test_edit_an_operator(app, client, admin):
    url = f"/operators/{admin.operator_id}"
    assert "Alpha operator" in client.get(url).get_data(as_text=True)
    response = client.post(url, data={"name": "Boris", "extension": "105", "team_id": "0"})
    assert response.status_code == 302
    with app.app_context():
        operator = db.session.get(Operator, admin.operator_id)
        assert (operator.name, operator.extension, operator.team_id) == ("Boris", "105", None)


def test_editing_to_a_taken_extension_is_explained(client, admin):
    _new(client, extension="102")
    response = client.post(
        f"/operators/{admin.operator_id}", data={"name": "X", "extension": "102", "team_id": "0"}
    )
    assert "Extension 102 already belongs to Anna." in response.get_data(as_text=True)


def test_bad_extension(client, admin):
    response = _new(client, extension="10 2")
    assert "no spaces" in response.get_data(as_text=True)


def test_deactivate_and_activate(app, client, auth, admin):
    client.post(f"/operators/{admin.operator_id}/deactivate")
    with app.app_context():
        operator = db.session.get(Operator, admin.operator_id)
        assert operator.active is False and operator.user.active is False
    auth.logout()
    assert auth.login(admin.operator_email).status_code == 403
    auth.login(admin.admin_email)
    client.post(f"/operators/{admin.operator_id}/activate")
    auth.logout()
    assert auth.login(admin.operator_email).status_code == 302


def test_teams(app, client, admin):
    assert client.post("/operators/teams/new", data={"name": "Night"}).status_code == 302
    response = client.post("/operators/teams/new", data={"name": "Night"})
    assert "There is already a team called Night." in response.get_data(as_text=True)
    page = client.get(f"/operators/teams/{admin.team_id}").get_data(as_text=True)
    assert "Alpha operator (101)" in page
    client.post(f"/operators/teams/{admin.team_id}", data={"name": "Day"})
    response = client.post(f"/operators/teams/{admin.team_id}", data={"name": "Night"})
    assert "There is already a team called Night." in response.get_data(as_text=True)
    assert client.post(f"/operators/teams/{admin.team_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Team, admin.team_id) is None
        assert db.session.get(Operator, admin.operator_id).team_id is None


def test_the_new_operator_can_sign_in_and_must_choose_a_password(client, auth, admin):
    _new(client)
    auth.logout()
    auth.login("anna@alpha.example", "first password 1")
    assert client.get("/").headers["Location"].endswith("/password")
    new = "annas own password"
    client.post("/password", data={"current": "first password 1", "password": new, "confirm": new})
    assert client.get("/console/").status_code == 200


def test_supervisors_read_operators_but_change_nothing(app, client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    assert client.get("/operators/").status_code == 200
    page = client.get(f"/operators/{tenant_a.operator_id}").get_data(as_text=True)
    assert "Alpha operator" in page and 'type="submit">Save' not in page
    assert client.get("/operators/new").status_code == 403
    response = client.post(
        f"/operators/{tenant_a.operator_id}", data={"name": "X", "extension": "9", "team_id": "0"}
    )
    assert response.status_code == 403
    assert client.post(f"/operators/{tenant_a.operator_id}/deactivate").status_code == 403
    with app.app_context():
        assert db.session.get(Operator, tenant_a.operator_id).name == "Alpha operator"
        assert db.session.scalar(db.select(User).where(User.email == tenant_a.operator_email))
    assert PASSWORD


def test_adding_editing_and_deactivating_operators_wakes_the_engine(client, auth, tenant_a):
    from tests.webapp.jobs import Wakes

    auth.login(tenant_a.admin_email)
    wakes = Wakes(tenant_a.id)
    client.post(
        "/operators/new",
        data={
            "name": "Olga",
            "email": "olga@alpha.example",
            "extension": "102",
            "password": "correct horse battery",
            "team_id": "0",
        },
    )
    client.post(
        f"/operators/{tenant_a.operator_id}",
        data={"name": "Renamed", "extension": "103", "team_id": "0"},
    )
    client.post(f"/operators/{tenant_a.operator_id}/deactivate")
    client.post(f"/operators/{tenant_a.operator_id}/activate")
    assert wakes.types() == ["operators"] * 4
    wakes.close()
