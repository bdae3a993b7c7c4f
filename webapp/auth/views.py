from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from webapp.auth import bp
from webapp.auth.forms import (
    ChangePasswordForm,
    LoginForm,
    ResetPasswordForm,
    ResetRequestForm,
    SignupForm,
)
from webapp.auth.tokens import (
    make_reset_token,
    make_verify_token,
    read_reset_token,
    read_verify_token,
)
from webapp.extensions import db, login_manager
from webapp.mail import send_mail
from webapp.models import User
from webapp.models.base import utcnow
from webapp.models.user import password_matches
from webapp.ratelimit import login_throttle
from webapp.services.accounts import EmailTaken, create_tenant_with_admin
from webapp.tenancy import across_tenants, remember_scope
from webapp.urls import public_url_for, safe_next

#: In the session of a user the single sign-on provider signed in.
SSO_SESSION_KEY = "sso"

#: Endpoints a user who must change the password may still reach.
_ALLOWED_BEFORE_PASSWORD_CHANGE = {
    "auth.change_password",
    "auth.logout",
    "pages.set_language",
    "health.healthz",
    "static",
}


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Session ids are `<user id>.<password fingerprint>.<session generation>`, checked on
    every request: changing the password ends every other session of that user, signing out
    ends all of them (even a copied cookie), and a deactivated user is signed out at once."""
    parts = session_id.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18:
        return None
    user_id, fingerprint, generation = parts
    with across_tenants():  # the session names its user before any tenant is known
        user = db.session.get(User, int(user_id))
    if (
        user is None
        or not user.active
        or fingerprint != user.password_fingerprint
        or generation != str(user.session_generation)
    ):
        return None
    remember_scope(user)
    return user


@bp.before_app_request
def force_password_change():
    # A single sign-on session never used the password, so it is not asked to change it
    # (docs/portal.md, "Single sign-on"); signing in with the password asks again.
    if (
        current_user.is_authenticated
        and current_user.must_change_password
        and not session.get(SSO_SESSION_KEY)
        and request.endpoint not in _ALLOWED_BEFORE_PASSWORD_CHANGE
    ):
        return redirect(url_for("auth.change_password"))
    return None


def sign_in(user: User, remember: bool = False, sso: bool = False) -> None:
    """Start a session of `user`; `sso` marks one the provider signed in (no password)."""
    # A fresh session on sign-in (no session fixation); keep only the chosen language.
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    if sso:
        session[SSO_SESSION_KEY] = True
    login_user(user, remember=remember)
    user.last_login_at = utcnow()
    db.session.commit()


def _verification_on() -> bool:
    return current_app.extensions["autocall.config"].email_verification


def _send_verification(user: User) -> None:
    link = public_url_for("auth.verify_email", token=make_verify_token(user))
    send_mail(
        user.email,
        _("Confirm your email address"),
        _("Open this link to confirm your email address for AutoCall Cloud:\n%(link)s", link=link),
    )


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("pages.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = create_tenant_with_admin(
                form.company.data.strip(),
                form.email.data,
                form.password.data,
                campaign_name=str(_("Default")),
            )
        except EmailTaken:
            form.email.errors.append(_("An account with this email already exists."))
        else:
            if _verification_on():
                _send_verification(user)
                return render_template("auth/check_mail.html", email=user.email)
            sign_in(user)
            flash(_("Welcome! Your company is set up; start with the SIP account."), "success")
            return redirect(url_for("settings.sip"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("pages.index"))
    form = LoginForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        email = User.normalize_email(form.email.data)
        ip = request.remote_addr or "unknown"
        throttle = login_throttle()
        # Counted before the password is checked: parallel guesses cannot pass together.
        wait = throttle.attempt(email, ip)
        if wait:
            flash(_("Too many failed sign-ins. Wait a few minutes and try again."), "error")
            status, headers = 429, {"Retry-After": str(wait)}
        else:
            with across_tenants():  # signing in finds the user before its tenant
                user = db.session.scalar(select(User).where(User.email == email))
            if not password_matches(user, form.password.data):
                flash(_("Wrong email or password."), "error")
                status = 401
            else:
                throttle.succeeded(email, ip)
                if not user.active:
                    flash(_("This account is deactivated. Ask your company's admin."), "error")
                    status = 403
                elif _verification_on() and user.email_verified_at is None:
                    _send_verification(user)
                    flash(_("Confirm your email address first: we sent you a new link."), "error")
                    status = 403
                else:
                    sign_in(user, remember=form.remember.data)
                    return redirect(safe_next(request.args.get("next")) or url_for("pages.index"))
    return render_template("auth/login.html", form=form), status, headers


@bp.post("/logout")
@login_required
def logout():
    # The session cookie is signed, not stored: a copy of it would still open the portal.
    # Raising the generation makes every copy (and every "remember me" cookie) worthless.
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        email = User.normalize_email(form.email.data)
        with across_tenants():  # a visitor who names an email address, of any tenant
            user = db.session.scalar(select(User).where(User.email == email))
        if user is not None and user.active:
            link = public_url_for("auth.reset_password", token=make_reset_token(user))
            send_mail(
                user.email,
                _("Reset your password"),
                _(
                    "Open this link within an hour to choose a new password:\n%(link)s\n\n"
                    "If you did not ask for it, ignore this message.",
                    link=link,
                ),
            )
        # The same answer whether or not the address has an account: no probing.
        flash(_("If an account uses this address, we sent it a link."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user = read_reset_token(token)
    if user is None:
        flash(_("This link has expired or was already used. Ask for a new one."), "error")
        return redirect(url_for("auth.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        user.set_password(form.password.data)
        user.must_change_password = False
        user.end_sessions()
        db.session.commit()
        flash(_("Your password is changed. Sign in with it."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form)


@bp.get("/verify/<token>")
def verify_email(token: str):
    user = read_verify_token(token)
    if user is None:
        flash(_("This link has expired. Sign in to get a new one."), "error")
        return redirect(url_for("auth.login"))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        db.session.commit()
    flash(_("Your email address is confirmed. Sign in."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append(_("This is not your current password."))
        elif form.current.data == form.password.data:
            form.password.errors.append(_("Choose a password different from the current one."))
        else:
            user = current_user._get_current_object()
            user.set_password(form.password.data)
            user.must_change_password = False
            user.end_sessions()
            db.session.commit()
            sign_in(user)  # a new session id: the new fingerprint and generation
            flash(_("Your password is changed."), "success")
            return redirect(url_for("pages.index"))
    return render_template("auth/change_password.html", form=form)
