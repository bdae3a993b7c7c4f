"""Who may see and change what. Every view names its rule with one of these decorators.

- `tenant_reader`: admin and supervisor of a tenant may read;
- `tenant_writer`: only the admin may change (supervisors read everything, change nothing);
- `role_required(...)`: the listed roles only (the operator console, the staff pages).

A signed-in user without the role gets 403; a visitor who is not signed in goes to the
sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, request
from flask_login import current_user

from webapp.extensions import login_manager
from webapp.models import Role


def role_required(*roles: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = roles  # read by the role-matrix tests
        return wrapped

    return decorator


tenant_writer = role_required(Role.ADMIN)


def tenant_reader(view: Callable) -> Callable:
    """Admins and supervisors may GET; anything else (POST) is for admins only."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        allowed = (
            (Role.ADMIN, Role.SUPERVISOR) if request.method in ("GET", "HEAD") else (Role.ADMIN,)
        )
        if current_user.role not in allowed:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def can_change() -> bool:
    """Whether the page should offer changes (templates hide forms from supervisors)."""
    return current_user.is_authenticated and current_user.role == Role.ADMIN
