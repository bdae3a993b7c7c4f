"""Single sign-on with OpenID Connect, configured per deployment (AUTOCALL_OIDC_*).

Authlib's Flask client does the protocol: discovery, the redirect with state, nonce and a
PKCE S256 challenge, the code exchange, and the ID token's signature (the provider's JWKS),
issuer, audience, nonce and expiry. This module adds the sign-in policy of docs/portal.md:
the provider must vouch for an email address (`email_verified`), and only an existing,
active user with that address is signed in. Every failure ends on the sign-in page with a
message, and counts against the sign-in limits like a wrong password (the callback is
counted on the client address when it arrives, and on the email address from that client
once the provider named one).

The blueprint is registered only when single sign-on is configured: otherwise its pages
answer 404 and the sign-in page shows no button.
"""

from __future__ import annotations

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client.apps import FlaskOAuth2App
from flask import Blueprint, Flask, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from joserfc.errors import JoseError
from sqlalchemy import select

from webapp.auth.views import sign_in
from webapp.config import DEFAULT_OIDC_NAME
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow
from webapp.ratelimit import login_throttle
from webapp.tenancy import across_tenants
from webapp.urls import public_url_for, safe_next

log = logging.getLogger(__name__)

bp = Blueprint("sso", __name__)

#: Where the page asked for before the round trip to the provider waits.
_NEXT_KEY = "sso_next"
#: Seconds the portal waits for the provider (discovery, keys, the token request).
PROVIDER_TIMEOUT = 10


class _Refused(Exception):
    """A sign-in this policy refuses: the message for the page, and the email to count."""

    def __init__(self, message: str, email: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.email = email


def init_app(app: Flask) -> None:
    """Register the provider and the pages when AUTOCALL_OIDC_ISSUER is set."""
    config = app.extensions["autocall.config"]
    if not config.oidc_enabled:
        return
    # One registry per app (docs/architecture.md): Authlib's Flask registry is bound to one
    # app and keeps the provider's metadata and keys with its clients.
    oauth = OAuth(app)
    app.extensions["autocall.sso"] = oauth.register(
        "oidc",
        client_id=config.oidc_client_id,
        client_secret=config.oidc_client_secret,
        server_metadata_url=config.oidc_discovery_url,
        client_kwargs={
            "scope": "openid email",
            "code_challenge_method": "S256",
            "default_timeout": PROVIDER_TIMEOUT,
        },
    )
    app.register_blueprint(bp)


def provider_name() -> str:
    name = current_app.extensions["autocall.config"].oidc_name
    return _("single sign-on") if name == DEFAULT_OIDC_NAME else name


@bp.app_context_processor
def sso_button():
    """The sign-in page shows "Sign in with <name>" when this blueprint is registered."""
    return {"sso_name": provider_name}


def _provider() -> FlaskOAuth2App:
    return current_app.extensions["autocall.sso"]


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _back_to_sign_in(message: str):
    flash(message, "error")
    return redirect(url_for("auth.login", next=session.pop(_NEXT_KEY, None)))


@bp.get("/login/sso")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("pages.index"))
    if login_throttle().wait(None, _client_address()):
        return _back_to_sign_in(_too_many())
    session.pop(_NEXT_KEY, None)
    target = safe_next(request.args.get("next"))
    if target:
        session[_NEXT_KEY] = target
    try:
        return _provider().authorize_redirect(public_url_for("sso.callback"))
    except (requests.RequestException, ValueError, AuthlibBaseError, RuntimeError) as error:
        log.warning("single sign-on: the provider's discovery failed: %r", error)
        return _back_to_sign_in(_unreachable())


@bp.get("/login/sso/callback")
def callback():
    if current_user.is_authenticated:
        return redirect(url_for("pages.index"))
    throttle = login_throttle()
    ip = _client_address()
    if throttle.attempt(None, ip):  # counted on the client address before anything is read
        return _back_to_sign_in(_too_many())
    try:
        user = _signed_in_user(ip)
    except _Refused as refused:
        if refused.email is not None:
            throttle.failed(refused.email, ip)
        return _back_to_sign_in(refused.message)
    throttle.succeeded(user.email, ip)
    target = session.get(_NEXT_KEY)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # the provider vouched for the address
    sign_in(user, sso=True)
    return redirect(safe_next(target) or url_for("pages.index"))


def _signed_in_user(ip: str) -> User:
    """The user the provider's answer signs in, or _Refused with the reason."""
    name = provider_name()
    config = current_app.extensions["autocall.config"]
    try:
        token = _provider().authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": config.oidc_issuer},
                "aud": {"essential": True, "value": config.oidc_client_id},
            }
        )
    except MismatchingStateError:
        # A state this browser's session does not hold: a tampered, replayed or stale link.
        raise _Refused(
            _("This sign-in with %(name)s expired or did not start here. Try again.", name=name)
        ) from None
    except AuthlibBaseError as error:
        # A refused or cancelled consent, or a code the provider would not exchange.
        log.info("single sign-on refused by the provider: %s", error)
        raise _Refused(
            _("%(name)s did not sign you in. Try again, or sign in with your password.", name=name)
        ) from None
    except JoseError as error:
        log.warning("single sign-on: the ID token is not valid: %r", error)
        raise _Refused(_untrusted()) from None
    except (requests.RequestException, ValueError, RuntimeError) as error:
        log.warning("single sign-on: the provider could not be read: %r", error)
        raise _Refused(_unreachable()) from None

    claims = token.get("userinfo")
    if claims is None:
        log.warning("single sign-on: the provider's answer has no ID token")
        raise _Refused(_untrusted())
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise _Refused(
            _("%(name)s did not give your email address, so it cannot sign you in here.", name=name)
        )
    email = User.normalize_email(email)
    if login_throttle().wait(email, ip):
        raise _Refused(_too_many())
    if claims.get("email_verified") is not True:
        raise _Refused(
            _(
                "%(name)s has not verified your email address %(email)s, so it cannot sign "
                "you in here.",
                name=name,
                email=email,
            ),
            email,
        )
    with across_tenants():  # the provider vouched for an address, of any tenant
        user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        raise _Refused(
            _("No account uses this email (%(email)s); ask your admin to add you.", email=email),
            email,
        )
    if not user.active:
        raise _Refused(_("This account is deactivated. Ask your company's admin."), email)
    return user


def _too_many() -> str:
    return _("Too many failed sign-ins. Wait a few minutes and try again.")


def _unreachable() -> str:
    return _(
        "%(name)s cannot be reached now. Try again later, or sign in with your password.",
        name=provider_name(),
    )


def _untrusted() -> str:
    return _(
        "The answer from %(name)s could not be verified, so it cannot sign you in. "
        "Try again, or ask your admin.",
        name=provider_name(),
    )
