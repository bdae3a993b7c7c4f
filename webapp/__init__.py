"""The AutoCall Cloud web portal: a Flask application factory.

Nothing here does I/O at import time; `create_app` builds an app from a `Config`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from webapp.config import Config


def _migrations_dir() -> Path:
    """The migrations. They live at the top of the repository (migrations/) and a built package
    carries them as its package `webapp.migrations` (setup.py): there when this package was
    installed from a wheel, else in the checkout this package is part of (an editable install
    too)."""
    here = Path(__file__).resolve().parent
    packaged = here / "migrations"
    return packaged if (packaged / "env.py").is_file() else here.parent / "migrations"


MIGRATIONS_DIR = _migrations_dir()


def create_app(config: Config | dict | None = None, *, serving: bool = True) -> Flask:
    """Build the portal. `config` is a `Config`, a dict of overrides, or None (environment).

    In production a serving app refuses a database role that row-level security does not
    bind (webapp/tenancy.py `check_database_role`); `serving=False` is for `autocall
    db-upgrade`, which may migrate as the tables' owner or a superuser and serves nobody."""
    if not isinstance(config, Config):
        config = Config.from_env(overrides=config)
    app = Flask(__name__)
    app.config.from_mapping(config.flask_settings())
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    if config.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.extensions["autocall.config"] = config

    from webapp.services.secrets import SecretBox

    app.extensions["autocall.secrets"] = SecretBox(config.encryption_key)

    from webapp import i18n, labels, mail, models, ratelimit, security, tenancy
    from webapp.extensions import csrf, db, login_manager, migrate

    # Order matters: the database first, then what uses it (migrations, logins),
    # then request-wide guards (CSRF), then the language of the pages.
    db.init_app(app)
    if serving and config.env == "production":
        with app.app_context():
            tenancy.check_database_role(db.engine)
    models.register_sqlite_pragmas(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    login_manager.init_app(app)
    csrf.init_app(app)
    i18n.init_app(app)
    labels.init_app(app)
    mail.init_app(app)
    ratelimit.init_app(app)
    tenancy.init_app(app)
    security.init_app(app)

    from webapp import (
        auth,
        campaigns,
        console,
        donotcall,
        health,
        leads,
        live,
        operators,
        pages,
        people,
        reports,
        settings,
        staff,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(operators.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(leads.bp)
    app.register_blueprint(donotcall.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(staff.bp)

    from webapp.auth import sso

    sso.init_app(app)

    from webapp import api

    api.init_app(app)

    from webapp import metrics

    metrics.init_app(app)
    return app
