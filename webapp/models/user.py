"""People who sign in: tenant admins, supervisors and operators, and platform staff."""

from __future__ import annotations

import hashlib
from contextlib import suppress
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import BigId, one_of, utcnow
from webapp.models.tenant import Tenant

_hasher = PasswordHasher()
_dummy_hashes: dict[int, str] = {}


class Role(StrEnum):
    ADMIN = "admin"  # changes everything of its tenant
    SUPERVISOR = "supervisor"  # reads everything of its tenant, changes nothing
    OPERATOR = "operator"  # the operator console only
    STAFF = "staff"  # platform billing / ops; belongs to no tenant


class User(UserMixin, db.Model):
    """A login. Users are the one table where `tenant_id` may be null: for staff only,
    which a CHECK constraint enforces."""

    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role),
        CheckConstraint(
            "(role = 'staff' AND tenant_id IS NULL) OR (role <> 'staff' AND tenant_id IS NOT NULL)",
            name="tenant_matches_role",
        ),
        Index(None, "tenant_id", "role"),
        Index(None, "tenant_id", "id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Part of every session id: raising it (sign-out, a new password) ends every session
    #: of the user, even one whose cookie was copied.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    tenant: Mapped[Tenant | None] = relationship()

    @staticmethod
    def normalize_email(email: str) -> str:
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return True

    @property
    def password_fingerprint(self) -> str:
        """Changes whenever the password does; ends sessions and reset links made before."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:  # Flask-Login's session id
        return f"{self.id}.{self.password_fingerprint}.{self.session_generation}"

    def end_sessions(self) -> None:
        """Make every session id given so far unusable (committed by the caller); one
        UPDATE, so sign-outs at the same moment never lose a step."""
        self.session_generation = User.session_generation + 1

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


def password_matches(user: User | None, password: str) -> bool:
    """Checks a sign-in. Without a user it still spends one hash verification, so the time
    of the answer does not tell which email addresses have an account."""
    if user is not None:
        return user.check_password(password)
    dummy = _dummy_hashes.get(id(_hasher))
    if dummy is None:
        dummy = _dummy_hashes[id(_hasher)] = _hasher.hash("no such user")
    with suppress(VerificationError, InvalidHashError):
        _hasher.verify(dummy, password)
    return False
