"""Who calls the API: a bearer token of a tenant, made by its admin or issued to one of its
OAuth 2 clients (client credentials grant). Both kinds map the request to the tenant, which
it then acts for with an admin's rights on leads and the do-not-call list, as far as the
token's scopes go: reading (GET) needs `read`; every other method creates or changes leads
or the do-not-call list and needs `leads`.

Authlib does the protocol: the authorization server answers POST /api/v1/oauth/token, the
resource protector reads `Authorization: Bearer` and has our validator check the token.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, current_app, request

from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.models import ApiToken
from webapp.models.api import LEADS, READ, SCOPES, new_secret
from webapp.services import api_access
from webapp.services.shapes import iso
from webapp.tenancy import act_for_tenant

#: What each scope allows, as the 403 for a token without it says.
SCOPE_NEEDED_FOR = {
    READ: "reading leads, their attempts and the do-not-call list",
    LEADS: "creating and changing leads and the do-not-call list",
}


class TokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> ApiToken | None:
        return api_access.find_token(token_string)

    def validate_token(self, token: ApiToken | None, scopes, request) -> None:
        """Authlib's checks, each answered with what failed."""
        if token is None:
            raise ApiError(401, "The token is not valid: wrong, revoked or expired.")
        if token.is_expired():
            renew = (
                "an admin makes a new one in Settings → API access"
                if token.client_id is None
                else "the client asks /api/v1/oauth/token for a new one"
            )
            raise ApiError(
                401,
                f"The token expired at {iso(token.expires_at)}; {renew}.",
                authenticate='error="invalid_token", error_description="The token expired"',
            )
        for scope in scopes or ():
            if not token.has_scope(scope):
                raise ApiError(
                    403,
                    f"This token does not have the scope {scope!r}, which "
                    f"{SCOPE_NEEDED_FOR[scope]} needs (its scopes: {token.scopes}).",
                    code="insufficient_scope",
                    authenticate=f'error="insufficient_scope", scope="{scope}"',
                )


class ClientCredentials(grants.ClientCredentialsGrant):
    """The id and secret may come as HTTP Basic or in the form, as RFC 6749 allows both."""

    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _save_token(token: dict, request) -> None:
    """Authlib made a random secret; keep its hash and give the client `act_<id>_<secret>`.
    The client proved its secret: the request acts for the client's tenant, and writes as it."""
    act_for_tenant(request.client.tenant_id)
    token["access_token"] = api_access.issue_oauth_token(
        request.client, token["access_token"], token["expires_in"], token["scope"]
    )


require_bearer = ResourceProtector()
require_bearer.register_token_validator(TokenValidator(realm="AutoCall API"))


def init_app(app: Flask) -> None:
    app.config.setdefault("OAUTH2_ACCESS_TOKEN_GENERATOR", lambda *args, **kwargs: new_secret())
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": api_access.OAUTH_TOKEN_SECONDS}
    )
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(SCOPES))
    server = AuthorizationServer(app, api_access.find_client, _save_token)
    server.register_grant(ClientCredentials)
    app.extensions["autocall.oauth"] = server


def authenticate_request() -> None:
    """Find the request's tenant from its bearer and check the scope the method needs;
    else answer 401 (no, a wrong, revoked or expired token) or 403 (a scope missing)."""
    try:
        token = require_bearer.acquire_token([scope_needed(request.method)])
    except OAuth2Error as error:
        if error.error == "missing_authorization":
            raise ApiError(401, "Send a token: Authorization: Bearer act_...") from None
        raise ApiError(401, "The token is not valid: wrong, revoked or expired.") from None
    api_access.note_use(token)
    act_for_tenant(token.tenant_id)


def scope_needed(method: str) -> str:
    """Reading (GET) needs `read`; every other method creates or changes leads or the
    do-not-call list and needs `leads`."""
    return READ if method.upper() in ("GET", "HEAD") else LEADS


@bp.post("/oauth/token")
def oauth_token():
    """RFC 6749 section 4.4: a client's id and secret for a short-lived bearer token."""
    return current_app.extensions["autocall.oauth"].create_token_response()
