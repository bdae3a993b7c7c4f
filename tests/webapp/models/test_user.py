import pytest
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Role, Tenant, User


def test_passwords_are_hashed_with_argon2(app):
    with app.app_context():
        user = User(email="a@b.example", role=Role.STAFF.value)
        user.set_password("correct horse battery")
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert user.check_password("correct horse battery")
        assert not user.check_password("wrong")


def test_a_missing_user_never_matches_but_costs_a_hash(monkeypatch):
    from argon2 import PasswordHasher

    from webapp.models import user as user_module

    calls = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash, password):
            calls.append(hash)
            return super().verify(hash, password)

    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(user_module, "_hasher", hasher)
    assert user_module.password_matches(None, "anything") is False
    assert user_module.password_matches(None, "no such user") is False
    assert len(calls) == 2


def test_session_id_changes_with_the_password(app):
    with app.app_context():
        user = User(id=7, email="a@b.example", role=Role.STAFF.value)
        user.set_password("first password")
        before = user.get_id()
        user.set_password("second password")
        assert before.startswith("7.")
        assert user.get_id() != before


def test_emails_are_normalised():
    assert User.normalize_email("  Anna@Example.COM ") == "anna@example.com"


@pytest.mark.parametrize(("role", "with_tenant"), [("staff", True), ("admin", False)])
def test_only_staff_has_no_tenant(app, role, with_tenant):
    with app.app_context():
        tenant = Tenant(name="Acme")
        db.session.add(tenant)
        db.session.flush()
        user = User(
            email="x@y.example",
            role=role,
            password_hash="x",
            tenant_id=tenant.id if with_tenant else None,
        )
        db.session.add(user)
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_roles_are_checked_by_the_database(app):
    with app.app_context():
        db.session.add(User(email="x@y.example", role="superuser", password_hash="x"))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_emails_are_unique(app):
    with app.app_context():
        for _ in range(2):
            db.session.add(User(email="x@y.example", role="staff", password_hash="x"))
        with pytest.raises(IntegrityError):
            db.session.commit()
