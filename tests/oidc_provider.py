"""A small OpenID Connect provider for tests, built on Authlib's server side.

Its own Flask app, served by werkzeug on 127.0.0.1 in a thread: discovery at
`/.well-known/openid-configuration`, the keys at `/jwks` (an RSA key made when the provider
starts), `/authorize` (the authorization code grant with OpenID Connect's ID token, PKCE
checked at `/token`). One client is registered: the portal, with its redirect URIs.

There is no login form: `/authorize` signs in `provider.user` at once (its claims go into
the ID token as they are, so a test can also set `aud` or `exp` to tamper with it), or,
with `provider.deny`, answers as a user who cancelled the consent. Every authorization
request's parameters are kept in `provider.requests`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

SCOPES = ("openid", "email", "profile")


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(part for part in (scope or "").split() if part in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic",)

    def save_authorization_code(self, code, request):
        payload = request.payload.data
        self.server.provider.codes[code] = Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            nonce=payload.get("nonce"),
            code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"),
        )

    def query_authorization_code(self, code, client):
        found = self.server.provider.codes.get(code)
        if found is not None and found.client_id == client.get_client_id():
            return found
        return None

    def delete_authorization_code(self, authorization_code):
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class IDToken(OpenIDCode):
    def __init__(self, provider: OpenIDProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        return any(code.nonce == nonce for code in self.provider.codes.values())

    def resolve_client_private_key(self, client):
        return self.provider.key

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": self.provider.key.kid}

    def get_client_claims(self, client):
        return {"iss": self.provider.issuer, "aud": [client.get_client_id()]}

    def generate_user_info(self, user, scope):
        return UserInfo(user)


class OpenIDProvider:
    """Start with `with OpenIDProvider(redirect_uris=[...]) as provider:`."""

    def __init__(
        self,
        redirect_uris: list[str],
        client_id: str = "autocall-portal",
        client_secret: str | None = None,
        email: str = "someone@example.com",
    ) -> None:
        self.client = Client(client_id, client_secret or secrets.token_urlsafe(24), redirect_uris)
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"}
        )
        self.user: dict = {"sub": "user-1", "email": email, "email_verified": True}
        self.deny = False
        self.codes: dict[str, Code] = {}
        self.requests: list[dict] = []
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OpenIDProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def _make_app(self) -> Flask:
        app = Flask(__name__)
        app.config["SESSION_COOKIE_NAME"] = "provider_session"  # never the portal's cookie
        server = AuthorizationServer(
            app,
            query_client=lambda client_id: (
                self.client if client_id == self.client.client_id else None
            ),
            save_token=lambda token, request: None,
        )
        server.provider = self
        server.register_grant(CodeGrant, [IDToken(self), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token",
                jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                scopes_supported=list(SCOPES),
                token_endpoint_auth_methods_supported=["client_secret_basic"],
                code_challenge_methods_supported=["S256"],
                claims_supported=["sub", "email", "email_verified"],
            )

        @app.get("/jwks")
        def jwks():
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():
            self.requests.append(request.args.to_dict())
            user = None if self.deny else dict(self.user)
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return dict(error.get_body()), error.status_code
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token():
            return server.create_token_response()

        return app
