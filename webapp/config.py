"""The one place that reads the environment. Typed, and loud about bad values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

#: Where the embedded defaults keep their files (the SQLite database, a private Redis).
VAR_DIR = Path(os.environ.get("AUTOCALL_VAR_DIR", Path.cwd() / "var"))

DEV_SECRET_KEY = "dev-only-secret-key-change-me"


class ConfigError(ValueError):
    """A setting is missing or has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Config:
    """Settings of one deployment. Every field maps to the variable AUTOCALL_<NAME>."""

    env: str = "development"
    secret_key: str = DEV_SECRET_KEY
    database_url: str = f"sqlite:///{VAR_DIR / 'autocall.db'}"
    redis_url: str = ""  # empty: `autocall run` starts a private Redis under VAR_DIR
    web_port: int = 5000

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping | None = None
    ) -> Config:
        environ = os.environ if environ is None else environ
        values: dict = {}
        for field in fields(cls):
            raw = environ.get(f"AUTOCALL_{field.name.upper()}")
            if raw is None:
                continue
            if field.type == "int":
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise ConfigError(
                        f"AUTOCALL_{field.name.upper()} must be a whole number, not {raw!r}"
                    ) from None
            else:
                values[field.name] = raw
        values.update(overrides or {})
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.env not in ("development", "testing", "production"):
            raise ConfigError(
                f"AUTOCALL_ENV must be development, testing or production, not {self.env!r}"
            )
        if self.env == "production" and self.secret_key == DEV_SECRET_KEY:
            raise ConfigError("AUTOCALL_SECRET_KEY must be set in production")

    def flask_settings(self) -> dict:
        return {
            "SECRET_KEY": self.secret_key,
            "TESTING": self.env == "testing",
        }
