import pytest

from webapp.extensions import db
from webapp.models import User


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _user(app, email) -> User:
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        db.session.expunge(user)
        return user


def test_lists_admins_and_supervisors_of_the_own_tenant_only(client, admin, tenant_b):
    page = client.get("/people/").get_data(as_text=True)
    assert admin.admin_email in page and admin.supervisor_email in page
    assert admin.operator_email not in page
    assert "bravo" not in page


def test_add_a_supervisor_who_must_change_the_password(app, client, auth, admin):
    data = {"email": "sue@alpha.example", "role": "supervisor", "password": "first password 1"}
    assert client.post("/people/new", data=data).status_code == 302
    user = _user(app, "sue@alpha.example")
    assert (user.role, user.tenant_id, user.must_change_password) == (
        "supervisor",
        admin.id,
        True,
    )
    auth.logout()
    auth.login("sue@alpha.example", "first password 1")
    assert client.get("/").headers["Location"].endswith("/password")


def test_roles_other_than_admin_and_supervisor_are_refused(client, admin):
    for role in ("staff", "operator"):
        data = {"email": "x@alpha.example", "role": role, "password": "first password 1"}
        response = client.post("/people/new", data=data)
        assert "Not a valid choice" in response.get_data(as_text=True)


def test_a_taken_email_is_explained(client, admin, tenant_b):
    data = {"email": tenant_b.admin_email, "role": "admin", "password": "first password 1"}
    response = client.post("/people/new", data=data)
    assert "An account with this email already exists." in response.get_data(as_text=True)


def test_deactivate_and_activate_but_never_yourself(app, client, admin):
    client.post(f"/people/{admin.supervisor_id}/deactivate")
    assert _user(app, admin.supervisor_email).active is False
    client.post(f"/people/{admin.supervisor_id}/activate")
    assert _user(app, admin.supervisor_email).active is True
    me = _user(app, admin.admin_email)
    response = client.post(f"/people/{me.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate yourself." in response.get_data(as_text=True)
    assert _user(app, admin.admin_email).active is True


def test_operators_are_not_managed_here(app, client, admin):
    operator = _user(app, admin.operator_email)
    assert client.post(f"/people/{operator.id}/deactivate").status_code == 404
