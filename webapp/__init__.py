"""The AutoCall Cloud web portal: a Flask application factory.

Nothing here does I/O at import time; `create_app` builds an app from a `Config`.
"""

from flask import Flask

from webapp.config import Config


def create_app(config: Config | dict | None = None) -> Flask:
    """Build the portal. `config` is a `Config`, a dict of overrides, or None (environment)."""
    if not isinstance(config, Config):
        config = Config.from_env(overrides=config)
    app = Flask(__name__)
    app.config.from_mapping(config.flask_settings())
    app.extensions["autocall.config"] = config

    from webapp import health

    app.register_blueprint(health.bp)
    return app
