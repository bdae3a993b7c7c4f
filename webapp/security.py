"""Response headers that make the browser refuse what the portal never does: scripts or
styles from elsewhere, being framed by another site, guessing content types. And one guard on
what comes in: text with a NUL character, which PostgreSQL can neither store nor search for
(a 500 from any form or search box), is answered 400 before a page sees it."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest

#: Everything comes from the portal itself (no CDN: the pages work offline too).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


class NulCharacter(BadRequest):
    """A parameter or form field holds a NUL character (webapp/pages answers it in words)."""


def _holds_nul() -> bool:
    values = list(request.args.values())
    # A form, but never an upload: the import reads uploads under its own size limit.
    if request.mimetype == "application/x-www-form-urlencoded":
        values += request.form.values()
    return any("\x00" in value for value in values)


def init_app(app: Flask) -> None:
    production = app.extensions["autocall.config"].env == "production"

    @app.before_request
    def refuse_nul_characters() -> None:
        # The API says it in JSON, naming the field (webapp/api/common.py, `check_text`).
        if request.blueprint != "api" and _holds_nul():
            raise NulCharacter()

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
