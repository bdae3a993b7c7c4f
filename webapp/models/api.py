"""What lets a tenant's CRM use the REST API: API tokens and OAuth 2 clients.

Both are credentials of one tenant. Only a hash of each secret is stored (SHA-256: the
secrets are random and long, so a slow hash adds nothing); the secret itself is shown once.

A bearer token reads `act_<id>_<secret>`: it names its row, so it is found by primary key
(no global index beside the tenant's own) and then checked against the hash in constant
time. The same table holds the tokens an admin creates (no client; an expiry if the admin
chose one) and the short-lived tokens issued to OAuth clients (`client_id` and `expires_at`
set).

Scopes say what a bearer may do: `read` reads leads, their attempts and the do-not-call
list; `leads` creates and changes them. A token and a client hold them space-separated, as
OAuth 2 writes scopes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, utcnow

TOKEN_PREFIX = "act_"
CLIENT_PREFIX = "acc_"

READ = "read"
LEADS = "leads"
#: Every scope, in the order they are written; credentials made before scopes have all.
SCOPES = (READ, LEADS)
ALL_SCOPES = " ".join(SCOPES)


def scope_text(scopes) -> str:
    """The known scopes among `scopes` (a list, or OAuth's space-separated text), in order."""
    given = set(scopes.split() if isinstance(scopes, str) else scopes or ())
    return " ".join(scope for scope in SCOPES if scope in given)


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_credential(text: str, prefix: str) -> tuple[int, str | None] | None:
    """(row id, secret) from `<prefix><id>` or `<prefix><id>_<secret>`; None if malformed."""
    if not text.startswith(prefix):
        return None
    number, _, secret = text[len(prefix) :].partition("_")
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        return None
    return int(number), secret or None


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class ApiClient(TenantOwned, db.Model):
    """An OAuth 2 client (client credentials grant) of a tenant; `acc_<id>` is its client_id.

    Implements what Authlib's authorization server asks of a client."""

    __tablename__ = "api_clients"
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When the client last asked for a token.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The scopes its tokens may have.
    scopes: Mapped[str] = mapped_column(String(32), default=ALL_SCOPES, server_default=ALL_SCOPES)

    @property
    def client_id(self) -> str:
        return f"{CLIENT_PREFIX}{self.id}"

    # --- authlib.oauth2.rfc6749.ClientMixin ---

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope) -> str | None:
        """All the client's scopes when it asks for none; else those asked for that it has
        (None, which Authlib answers with invalid_scope, when that leaves nothing)."""
        if not scope:
            return self.scopes
        allowed = set(self.scopes.split())
        return scope_text(s for s in scope.split() if s in allowed) or None

    def check_redirect_uri(self, redirect_uri) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class ApiToken(TenantOwned, db.Model):
    """A bearer token: made by an admin (`client_id` null, an optional expiry) or issued to
    an OAuth client (short-lived). Deleting the row (or its client) revokes it."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "client_id"],
            ["api_clients.tenant_id", "api_clients.id"],
            ondelete="CASCADE",
        ),
        Index(None, "tenant_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(100), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[str] = mapped_column(String(32), default=ALL_SCOPES, server_default=ALL_SCOPES)

    @property
    def hint(self) -> str:
        """What the portal shows of a token: the start, which is no secret."""
        return f"{TOKEN_PREFIX}{self.id}_…"

    # --- what Authlib's bearer token validator asks of a token ---

    def is_expired(self, now: datetime | None = None) -> bool:
        expires_at = as_utc(self.expires_at)
        return expires_at is not None and expires_at <= (now or datetime.now(UTC))

    def is_revoked(self) -> bool:
        return False  # a revoked token is a deleted row

    def get_scope(self) -> str:
        return self.scopes

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split()
