"""Signed, expiring tokens for password-reset and email-verification links.

A reset token carries a fingerprint of the current password hash, so it stops working
once the password changes: each link can be used once. A valid link proves its user: the
request acts with the user's scope from then on (row-level security), so that it can write
the new password or the confirmation.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import User
from webapp.tenancy import across_tenants, remember_scope

RESET_MAX_AGE = 3600
VERIFY_MAX_AGE = 7 * 24 * 3600


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"autocall-{purpose}")


def make_reset_token(user: User) -> str:
    return _serializer("reset").dumps({"u": user.id, "p": user.password_fingerprint})


def read_reset_token(token: str) -> User | None:
    try:
        data = _serializer("reset").loads(token, max_age=RESET_MAX_AGE)
    except BadSignature:
        return None
    user = _user(data.get("u"))
    if user is None or not user.active or data.get("p") != user.password_fingerprint:
        return None
    remember_scope(user)
    return user


def make_verify_token(user: User) -> str:
    return _serializer("verify").dumps({"u": user.id, "e": user.email})


def read_verify_token(token: str) -> User | None:
    try:
        data = _serializer("verify").loads(token, max_age=VERIFY_MAX_AGE)
    except BadSignature:
        return None
    user = _user(data.get("u"))
    if user is None or user.email != data.get("e"):
        return None
    remember_scope(user)
    return user


def _user(user_id) -> User | None:
    """The user a signed link names, whatever the tenant (none is known before)."""
    if not isinstance(user_id, int):
        return None
    with across_tenants():
        return db.session.get(User, user_id)
