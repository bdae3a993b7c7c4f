"""Signed, expiring tokens for password-reset and email-verification links.

A reset token carries a fingerprint of the current password hash, so it stops working
once the password changes: each link can be used once.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import User

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
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or data.get("p") != user.password_fingerprint:
        return None
    return user


def make_verify_token(user: User) -> str:
    return _serializer("verify").dumps({"u": user.id, "e": user.email})


def read_verify_token(token: str) -> User | None:
    try:
        data = _serializer("verify").loads(token, max_age=VERIFY_MAX_AGE)
    except BadSignature:
        return None
    user = db.session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        return None
    return user
