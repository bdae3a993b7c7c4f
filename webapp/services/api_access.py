"""API credentials: tokens an admin creates, OAuth clients, and the bearer of a request.

Secrets are returned once, when made; the database keeps their SHA-256 only. Each credential
has scopes (`read`, `leads`: webapp/models/api.py); an admin's token may also expire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from webapp.extensions import db
from webapp.models import ApiClient, ApiToken
from webapp.models.api import (
    CLIENT_PREFIX,
    SCOPES,
    TOKEN_PREFIX,
    as_utc,
    hash_secret,
    new_secret,
    parse_credential,
    scope_text,
    secret_matches,
)
from webapp.tenancy import across_tenants

#: How long a token issued to an OAuth client lives.
OAUTH_TOKEN_SECONDS = 3600
#: `last_used_at` is written at most this often per credential, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def _bearer(token: ApiToken, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token.id}_{secret}"


class NoScope(ValueError):
    """A credential must have at least one scope."""


def _scopes(scopes) -> str:
    text = scope_text(scopes)
    if not text:
        raise NoScope
    return text


def create_token(
    tenant_id: int, name: str, scopes=SCOPES, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A token for the tenant's integrations with these scopes, living until revoked or
    until `expires_at`; (row, the bearer text to show once). NoScope without a scope."""
    secret = new_secret()
    token = ApiToken(
        tenant_id=tenant_id,
        name=name.strip(),
        secret_hash=hash_secret(secret),
        scopes=_scopes(scopes),
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.commit()
    return token, _bearer(token, secret)


def create_client(tenant_id: int, name: str, scopes=SCOPES) -> tuple[ApiClient, str]:
    """An OAuth client whose tokens may have these scopes; (row, the client secret to show
    once). NoScope without a scope."""
    secret = new_secret()
    client = ApiClient(
        tenant_id=tenant_id,
        name=name.strip(),
        secret_hash=hash_secret(secret),
        scopes=_scopes(scopes),
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def issue_oauth_token(client: ApiClient, secret: str, expires_in: int, scopes: str) -> str:
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
        tenant_id=client.tenant_id,
        client_id=client.id,
        name=client.name,
        secret_hash=hash_secret(secret),
        expires_at=now + timedelta(seconds=expires_in),
        scopes=_scopes(scopes),
    )
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


def find_token(bearer: str) -> ApiToken | None:
    """The token this bearer text proves, expired or not; None when it is malformed, wrong
    or revoked."""
    parsed = parse_credential(bearer or "", TOKEN_PREFIX)
    if parsed is None or parsed[1] is None:
        return None
    with across_tenants():  # the bearer names its row before its tenant is known
        token = db.session.get(ApiToken, parsed[0])
    if token is None or not secret_matches(parsed[1], token.secret_hash):
        return None
    return token


def note_use(token: ApiToken) -> None:
    """Note when a token was used (at most once per LAST_USED_PRECISION)."""
    now = datetime.now(UTC)
    last_used = as_utc(token.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_PRECISION:
        token.last_used_at = now
