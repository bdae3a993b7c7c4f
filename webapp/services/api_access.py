"""API credentials: tokens an admin creates, OAuth clients, and the bearer of a request.

Secrets are returned once, when made; the database keeps their SHA-256 only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from webapp.extensions import db
from webapp.models import ApiClient, ApiToken
from webapp.models.api import (
    CLIENT_PREFIX,
    TOKEN_PREFIX,
    as_utc,
    hash_secret,
    new_secret,
    parse_credential,
    secret_matches,
)
from webapp.tenancy import across_tenants

#: How long a token issued to an OAuth client lives.
OAUTH_TOKEN_SECONDS = 3600
#: `last_used_at` is written at most this often per credential, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def _bearer(token: ApiToken, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token.id}_{secret}"


def create_token(tenant_id: int, name: str) -> tuple[ApiToken, str]:
    """A token for the tenant's integrations; (row, the bearer text to show once)."""
    secret = new_secret()
    token = ApiToken(tenant_id=tenant_id, name=name.strip(), secret_hash=hash_secret(secret))
    db.session.add(token)
    db.session.commit()
    return token, _bearer(token, secret)


def create_client(tenant_id: int, name: str) -> tuple[ApiClient, str]:
    """An OAuth client; (row, the client secret to show once)."""
    secret = new_secret()
    client = ApiClient(tenant_id=tenant_id, name=name.strip(), secret_hash=hash_secret(secret))
    db.session.add(client)
    db.session.commit()
    return client, secret


def issue_oauth_token(client: ApiClient, secret: str, expires_in: int) -> str:
    """Store a token for an authenticated OAuth client and give back its bearer text.
    The client's expired tokens go at the same time, so they never pile up."""
    now = datetime.now(UTC)
    db.session.execute(
        delete(ApiToken).where(
            ApiToken.tenant_id == client.tenant_id,
            ApiToken.client_id == client.id,
            ApiToken.expires_at <= now,
        )
    )
    token = ApiToken(
        tenant_id=client.tenant_id, client_id=client.id, name=client.name,
        secret_hash=hash_secret(secret), expires_at=now + timedelta(seconds=expires_in),
    )  # fmt: skip
    db.session.add(token)
    client.last_used_at = now
    db.session.commit()
    return _bearer(token, secret)


def find_client(client_id: str) -> ApiClient | None:
    """The OAuth client named by `acc_<id>` (any tenant: the secret is checked next)."""
    parsed = parse_credential(client_id or "", CLIENT_PREFIX)
    if parsed is None or parsed[1] is not None:
        return None
    with across_tenants():  # the client id names its row before its tenant is known
        return db.session.get(ApiClient, parsed[0])


def authenticate(bearer: str) -> ApiToken | None:
    """The live token this bearer text proves, or None (malformed, wrong, revoked, expired).
    Notes when it was used."""
    parsed = parse_credential(bearer or "", TOKEN_PREFIX)
    if parsed is None or parsed[1] is None:
        return None
    with across_tenants():  # the bearer names its row before its tenant is known
        token = db.session.get(ApiToken, parsed[0])
    if token is None or not secret_matches(parsed[1], token.secret_hash) or token.is_expired():
        return None
    now = datetime.now(UTC)
    last_used = as_utc(token.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_PRECISION:
        token.last_used_at = now
    return token
