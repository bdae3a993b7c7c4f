"""Every answer of the API that is not a success: `{"error": {"code", "message", "field"}}`.

`code` is stable (clients branch on it), `message` is for the person reading the logs,
`field` names the culprit of a 422 (null otherwise)."""

from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException

#: HTTP status -> (code, message) for errors raised without an ApiError.
_GENERIC = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Send a valid token: Authorization: Bearer act_..."),
    403: ("forbidden", "This credential does not give access here."),
    404: ("not_found", "There is nothing here: no such object or path."),
    405: ("method_not_allowed", "This method cannot be used on this path."),
    409: ("conflict", "The request conflicts with the object's state."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."),
    422: ("invalid", "The request is not valid."),
    500: ("internal_error", "Something went wrong on our side; try again later."),
}

REALM = 'Bearer realm="AutoCall API"'


class ApiError(Exception):
    """Raised anywhere under /api/v1; answered as JSON with its status."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        field: str | None = None,
        code: str | None = None,
        authenticate: str | None = None,
    ):
        generic_code, generic_message = _GENERIC.get(status, ("error", "The request failed."))
        super().__init__(message or generic_message)
        self.status = status
        self.code = code or generic_code
        self.message = message or generic_message
        self.field = field
        #: RFC 6750's attributes after the realm in WWW-Authenticate (error="...", scope=...).
        self.authenticate = authenticate

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def invalid(field: str, message: str) -> ApiError:
    """A 422 that names the field."""
    return ApiError(422, message, field=field)


def not_found(what: str, object_id: int) -> ApiError:
    """Another tenant's object is answered exactly like a missing one."""
    return ApiError(404, f"There is no {what} {object_id}.")


def respond(error: ApiError):
    response = jsonify(error.body())
    response.status_code = error.status
    if error.status == 401 or error.authenticate:
        extra = f", {error.authenticate}" if error.authenticate else ""
        response.headers["WWW-Authenticate"] = REALM + extra
    return response


def from_http_exception(exception: HTTPException) -> ApiError:
    return ApiError(exception.code or 500)
