from webapp.auth.tokens import (
    make_reset_token,
    make_verify_token,
    read_reset_token,
    read_verify_token,
)
from webapp.extensions import db
from webapp.models import User


def test_tokens_round_trip_and_are_not_interchangeable(app, tenant_a):
    with app.test_request_context():
        user = db.session.scalar(db.select(User).where(User.email == tenant_a.admin_email))
        reset, verify = make_reset_token(user), make_verify_token(user)
        assert read_reset_token(reset) == user
        assert read_verify_token(verify) == user
        assert read_reset_token(verify) is None
        assert read_verify_token(reset) is None


def test_a_reset_token_dies_with_the_password(app, tenant_a):
    with app.test_request_context():
        user = db.session.scalar(db.select(User).where(User.email == tenant_a.admin_email))
        token = make_reset_token(user)
        user.set_password("something else entirely")
        assert read_reset_token(token) is None
