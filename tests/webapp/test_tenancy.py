import pytest
from werkzeug.exceptions import NotFound

from webapp.extensions import db
from webapp.models import Operator, Team, User
from webapp.tenancy import current_tenant, get_or_404, scoped


def _as(app, email):
    """A request context signed in as the user with this email."""
    from flask_login import login_user

    ctx = app.test_request_context()
    ctx.push()
    user = db.session.scalar(db.select(User).where(User.email == email))
    login_user(user)
    return ctx


def test_scoped_reads_only_the_current_tenants_rows(app, tenant_a, tenant_b):
    ctx = _as(app, tenant_a.admin_email)
    try:
        assert current_tenant().id == tenant_a.id
        teams = db.session.scalars(scoped(Team)).all()
        assert [t.id for t in teams] == [tenant_a.team_id]
        assert get_or_404(Operator, tenant_a.operator_id).id == tenant_a.operator_id
        with pytest.raises(NotFound):
            get_or_404(Operator, tenant_b.operator_id)
        with pytest.raises(NotFound):
            get_or_404(Team, 10**9)
    finally:
        ctx.pop()


def test_users_without_a_tenant_see_nothing(app, tenant_a, staff_email):
    ctx = _as(app, staff_email)
    try:
        assert current_tenant() is None
        with pytest.raises(NotFound):
            scoped(Team)
        with pytest.raises(NotFound):
            get_or_404(Team, tenant_a.team_id)
    finally:
        ctx.pop()


def test_scoped_refuses_tables_that_are_not_tenant_owned(app, tenant_a):
    ctx = _as(app, tenant_a.admin_email)
    try:
        with pytest.raises(TypeError):
            scoped(User)
    finally:
        ctx.pop()
