"""Small helpers about URLs shared by blueprints."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path of this site, else None: a `next` parameter must never
    send a user to another host (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def public_url_for(endpoint: str, **values) -> str:
    """The full URL of `endpoint` at the portal's public address (AUTOCALL_PUBLIC_URL), for
    links that leave the page: in mail, to a single sign-on provider. Never built from the
    request's Host or X-Forwarded-Host, which the client chooses: a crafted header would
    otherwise mail a password-reset link (and its token) to another site."""
    base = urlsplit(current_app.extensions["autocall.config"].public_base_url)
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)
