"""The REST API at /api/v1: JSON in and out, for a tenant's CRM and website forms.

Bearer tokens, never cookies: the blueprint is exempt from CSRF, and a browser session
gives no access here. Errors are JSON (webapp/api/errors.py); the OpenAPI document
(webapp/api/openapi.py) says what every endpoint takes and answers.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from webapp.api import errors

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Endpoints that need no bearer: the document and the OAuth token endpoint.
PUBLIC = {"api.openapi", "api.oauth_token"}
#: The largest request body taken (a bulk of 1000 leads with their cards fits well).
MAX_BODY_BYTES = 8 * 1024 * 1024


@bp.before_app_request
def _json_routing_errors():
    """A wrong path or method under /api/ fails before any blueprint sees it: answer JSON."""
    error = request.routing_exception
    if error is None or isinstance(error, RequestRedirect):
        return None
    if request.path.startswith(bp.url_prefix + "/"):
        status = error.code if isinstance(error, HTTPException) else None
        return errors.respond(errors.ApiError(status or 404))
    return None


@bp.before_request
def _authenticate():
    request.max_content_length = MAX_BODY_BYTES
    if request.endpoint not in PUBLIC:
        auth.authenticate_request()


@bp.errorhandler(errors.ApiError)
def _api_error(error: errors.ApiError):
    return errors.respond(error)


@bp.errorhandler(HTTPException)
def _http_error(exception: HTTPException):
    return errors.respond(errors.from_http_exception(exception))


def init_app(app: Flask) -> None:
    from webapp.extensions import csrf

    auth.init_app(app)
    csrf.exempt(bp)
    app.register_blueprint(bp)


from webapp.api import auth, do_not_call, leads, openapi  # noqa: E402,F401
