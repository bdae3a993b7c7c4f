"""Who calls the API: a bearer token of a tenant, made by its admin or issued to one of its
OAuth 2 clients (client credentials grant). Both kinds map the request to the tenant, which
it then acts for with an admin's rights on leads and the do-not-call list.

Authlib does the protocol: the authorization server answers POST /api/v1/oauth/token, the
resource protector reads `Authorization: Bearer` and has our validator check the token.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, current_app

from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.models import ApiToken
from webapp.models.api import new_secret
from webapp.services import api_access
from webapp.tenancy import act_for_tenant


class TokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> ApiToken | None:
        return api_access.authenticate(token_string)


class ClientCredentials(grants.ClientCredentialsGrant):
    """The id and secret may come as HTTP Basic or in the form, as RFC 6749 allows both."""

    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _save_token(token: dict, request) -> None:
    """Authlib made a random secret; keep its hash and give the client `act_<id>_<secret>`.
    The client proved its secret: the request acts for the client's tenant, and writes as it."""
    act_for_tenant(request.client.tenant_id)
    token["access_token"] = api_access.issue_oauth_token(
        request.client, token["access_token"], token["expires_in"]
    )


require_bearer = ResourceProtector()
require_bearer.register_token_validator(TokenValidator(realm="AutoCall API"))


def init_app(app: Flask) -> None:
    app.config.setdefault("OAUTH2_ACCESS_TOKEN_GENERATOR", lambda *args, **kwargs: new_secret())
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": api_access.OAUTH_TOKEN_SECONDS}
    )
    server = AuthorizationServer(app, api_access.find_client, _save_token)
    server.register_grant(ClientCredentials)
    app.extensions["autocall.oauth"] = server


def authenticate_request() -> None:
    """Find the request's tenant from its bearer, or answer 401."""
    try:
        token = require_bearer.acquire_token()
    except OAuth2Error as error:
        if error.error == "missing_authorization":
            raise ApiError(401, "Send a token: Authorization: Bearer act_...") from None
        raise ApiError(401, "The token is not valid: wrong, revoked or expired.") from None
    act_for_tenant(token.tenant_id)


@bp.post("/oauth/token")
def oauth_token():
    """RFC 6749 section 4.4: a client's id and secret for a short-lived bearer token."""
    return current_app.extensions["autocall.oauth"].create_token_response()
