import pytest
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Operator, Role, Team, User


def _operator(tenant_id, user_id, extension="102", team_id=None):
    return Operator(
        tenant_id=tenant_id, user_id=user_id, name="Op", extension=extension, team_id=team_id
    )


def _user(tenant_id, email):
    user = User(email=email, role=Role.OPERATOR.value, password_hash="x", tenant_id=tenant_id)
    db.session.add(user)
    db.session.flush()
    return user


def test_extension_is_unique_within_a_tenant(app, tenant_a):
    with app.app_context():
        user = _user(tenant_a.id, "other@alpha.example")
        db.session.add(_operator(tenant_a.id, user.id, extension="101"))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_two_tenants_may_use_the_same_extension(app, tenant_a, tenant_b):
    with app.app_context():
        extensions = db.session.scalars(db.select(Operator.extension)).all()
        assert extensions == ["101", "101"]


def test_an_operator_cannot_join_another_tenants_team(app, tenant_a, tenant_b):
    with app.app_context():
        user = _user(tenant_a.id, "other@alpha.example")
        db.session.add(_operator(tenant_a.id, user.id, team_id=tenant_b.team_id))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_an_operator_cannot_use_another_tenants_login(app, tenant_a, tenant_b):
    with app.app_context():
        user = _user(tenant_b.id, "other@bravo.example")
        db.session.add(_operator(tenant_a.id, user.id))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_team_names_are_unique_within_a_tenant(app, tenant_a):
    with app.app_context():
        db.session.add(Team(tenant_id=tenant_a.id, name="Alpha team"))
        with pytest.raises(IntegrityError):
            db.session.commit()
