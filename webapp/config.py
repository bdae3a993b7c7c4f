"""The one place that reads the environment. Typed, and loud about bad values."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from engine.sip.nat import PortRange, PublicAddresses
from webapp.mail import check_smtp_url

#: Where the embedded defaults keep their files (the SQLite database, a private Redis).
VAR_DIR = Path(os.environ.get("AUTOCALL_VAR_DIR", Path.cwd() / "var"))

DEV_SECRET_KEY = "dev-only-secret-key-change-me"
#: Shorter secret keys (an empty one, a word) are refused in production.
MIN_SECRET_KEY_LENGTH = 32
#: A Fernet key for development only; production must set AUTOCALL_ENCRYPTION_KEY.
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hnLW1lISE="

#: The name on the sign-in page's single sign-on button unless AUTOCALL_OIDC_NAME says another.
DEFAULT_OIDC_NAME = "single sign-on"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting is missing or has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Config:
    """Settings of one deployment. Every field maps to the variable AUTOCALL_<NAME>."""

    env: str = "development"
    secret_key: str = DEV_SECRET_KEY
    database_url: str = f"sqlite:///{VAR_DIR / 'autocall.db'}"
    redis_url: str = ""  # empty: `autocall run` starts a private Redis under VAR_DIR
    #: The start of every Redis key this deployment writes (`ac:t:{tenant_id}:...`), so
    #: deployments (or test runs) can share one Redis without seeing each other's keys.
    redis_prefix: str = "ac:"
    web_port: int = 5000
    #: The portal's address as its users reach it (https://autocall.example.com, or with a
    #: path); links in mail (password resets, address confirmations) are built from it,
    #: never from a request's Host. Required in production; elsewhere
    #: http://127.0.0.1:<web_port>.
    public_url: str = ""
    #: `text` or `json` (one object a line, with tenant and call ids); empty: json in
    #: production, text elsewhere.
    log_format: str = ""
    #: Where `./dev run`'s demo PBX listens (on 127.0.0.1).
    demo_pbx_port: int = 5090
    #: Fernet key (urlsafe base64 of 32 bytes) that encrypts tenants' SIP passwords.
    encryption_key: str = DEV_ENCRYPTION_KEY
    #: `smtp` sends through smtp_url (by a job); `console` prints mail to standard output;
    #: `memory` keeps it in a list (tests). webapp/mail.py.
    mail_backend: str = "console"
    #: The mail server: smtp://USER:PASSWORD@HOST:587 (STARTTLS), smtps://...:465, or
    #: smtp://HOST:25?tls=none for a trusted relay.
    smtp_url: str = ""
    mail_sender: str = "AutoCall Cloud <no-reply@autocall.local>"
    #: Whether new accounts must confirm their email address before they can sign in.
    email_verification: bool = False
    #: Sign-in attempts per email address from one client address, and per client address,
    #: before back-off; the window is the longest pause, and how long attempts are
    #: remembered after it (webapp/ratelimit.py).
    login_attempts: int = 5
    login_attempts_per_ip: int = 30
    login_window_seconds: int = 900
    #: How many reverse proxies (nginx, a load balancer) stand in front of the portal and
    #: set X-Forwarded-For / -Proto; 0 trusts no such header. Rate limits need the real
    #: client address, and Secure cookies need to know the request came over HTTPS.
    trusted_proxies: int = 0
    #: Tenants one engine host runs at most (each with its own UDP socket and registration).
    engine_capacity: int = 50
    #: Local address the engines' SIP sockets bind to; empty: any address of the PBX's
    #: family (IPv4 or IPv6). An address (0.0.0.0, ::, or one of the machine's) restricts
    #: the engines to its family.
    engine_bind: str = ""
    #: The UDP ports the SIP sockets (the engines', the SIP page's checks') take, like
    #: 5070-5199: each takes the first free one, so a tenant can allow-list them in the
    #: PBX's firewall. Empty: any port the system gives.
    sip_ports: str = ""
    #: The address (or one IPv4 and one IPv6 address, comma-separated) PBXes reach the
    #: engines at, when they sit behind NAT (a Compose bridge network, a cloud's 1:1 NAT).
    #: Empty: each user agent learns it from its PBX's answers (RFC 3581).
    sip_public_address: str = ""
    #: Engine-host worker processes `autocall worker` and `autocall run` start.
    engine_workers: int = 1
    #: Where uploaded CSV files wait for the import job; the web processes and the workers
    #: must both reach it (one machine, or a shared volume). Each file is deleted after import.
    upload_dir: str = str(VAR_DIR / "uploads")
    #: The largest CSV file of leads the portal takes, in megabytes.
    import_max_megabytes: int = 50
    #: Seconds between a failed webhook delivery and its next try, one number a retry
    #: (comma-separated); after the last, the delivery is given up.
    webhook_retry_seconds: str = "60,300,1800,7200,21600"
    #: Whether webhooks may go to private, loopback and link-local addresses. Always
    #: allowed in development and testing; in production only with this set.
    webhook_allow_private: bool = False
    #: Whether a tenant's PBX or outbound proxy may be a private, loopback or link-local
    #: address. Always allowed in development and testing (the demo's PBX is on 127.0.0.1);
    #: in production only with this set (a PBX inside the same private network).
    sip_allow_private: bool = False
    #: Single sign-on with OpenID Connect, off while all three are empty: the provider's
    #: issuer URL (discovery at ISSUER/.well-known/openid-configuration), and the client id
    #: and secret the provider gave this portal.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    #: The provider's name on the sign-in button ("Sign in with <name>").
    oidc_name: str = DEFAULT_OIDC_NAME
    #: Event streams (open operator consoles) one person may hold at once, across every web
    #: process, and one tenant; over either the stream is refused with 429 (webapp/streams.py).
    streams_per_user: int = 3
    streams_per_tenant: int = 1000
    #: Event streams one web process holds at most (503 beyond); webapp/gunicorn_conf.py gives
    #: each worker this many threads for streams, beside its threads for pages.
    web_streams: int = 2000
    #: Bearer token a Prometheus scrape of /metrics must send; empty: /metrics answers only
    #: requests made directly from this machine (loopback, not through a proxy).
    metrics_token: str = ""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping | None = None
    ) -> Config:
        environ = os.environ if environ is None else environ
        values: dict = {}
        for field in fields(cls):
            name = f"AUTOCALL_{field.name.upper()}"
            raw = environ.get(name)
            if raw is None:
                continue
            if field.type == "int":
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
            elif field.type == "bool":
                if raw.strip().lower() not in _TRUE | _FALSE:
                    raise ConfigError(f"{name} must be 1 or 0 (true or false), not {raw!r}")
                values[field.name] = raw.strip().lower() in _TRUE
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
        if self.env == "production" and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"AUTOCALL_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} random characters "
                "in production; make one with: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if self.env == "production" and self.encryption_key == DEV_ENCRYPTION_KEY:
            raise ConfigError("AUTOCALL_ENCRYPTION_KEY must be set in production")
        try:
            key = base64.urlsafe_b64decode(self.encryption_key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            key = b""
        if len(key) != 32:
            raise ConfigError(
                "AUTOCALL_ENCRYPTION_KEY must be a Fernet key (urlsafe base64 of 32 bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        self._check_public_url()
        if self.mail_backend not in ("smtp", "console", "memory"):
            raise ConfigError(
                f"AUTOCALL_MAIL_BACKEND must be smtp, console or memory, not {self.mail_backend!r}"
            )
        if self.mail_backend == "smtp" and (problem := check_smtp_url(self.smtp_url)):
            raise ConfigError(problem)
        if self.log_format not in ("", "text", "json"):
            raise ConfigError(f"AUTOCALL_LOG_FORMAT must be text or json, not {self.log_format!r}")
        if self.trusted_proxies < 0:
            raise ConfigError("AUTOCALL_TRUSTED_PROXIES must be 0 or more")
        try:
            retries = self.webhook_retries
        except ValueError:
            retries = (-1,)
        if any(seconds < 0 for seconds in retries):
            raise ConfigError(
                "AUTOCALL_WEBHOOK_RETRY_SECONDS must be whole seconds separated by commas, "
                f"not {self.webhook_retry_seconds!r}"
            )
        self._check_oidc()
        self._check_sip_network()
        for name in (
            "login_attempts",
            "login_attempts_per_ip",
            "login_window_seconds",
            "import_max_megabytes",
            "engine_capacity",
            "engine_workers",
            "streams_per_user",
            "streams_per_tenant",
            "web_streams",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"AUTOCALL_{name.upper()} must be at least 1")

    def _check_public_url(self) -> None:
        if not self.public_url.strip():
            if self.env == "production":
                raise ConfigError(
                    "AUTOCALL_PUBLIC_URL must be set in production: the portal's address as "
                    "its users reach it, e.g. https://autocall.example.com (links in password "
                    "resets and address confirmations are built from it)"
                )
            return
        url = urlsplit(self.public_url.strip())
        schemes = ("https",) if self.env == "production" else ("http", "https")
        try:
            url.port  # noqa: B018 (raises on a port that is not a number)
            usable = bool(
                url.scheme in schemes
                and url.hostname
                and not url.username
                and not url.query
                and not url.fragment
            )
        except ValueError:
            usable = False
        if not usable:
            raise ConfigError(
                "AUTOCALL_PUBLIC_URL must be the portal's address like "
                "https://autocall.example.com (https:// in production; no query or fragment), "
                f"not {self.public_url!r}"
            )

    def _check_sip_network(self) -> None:
        try:
            self.sip_port_range  # noqa: B018 (raises on a range it cannot read)
        except ValueError as error:
            raise ConfigError(f"AUTOCALL_SIP_PORTS: {error}") from None
        try:
            self.sip_public_addresses  # noqa: B018
        except ValueError as error:
            raise ConfigError(f"AUTOCALL_SIP_PUBLIC_ADDRESS: {error}") from None
        if self.engine_bind.strip():
            try:
                ipaddress.ip_address(self.engine_bind.strip())
            except ValueError:
                raise ConfigError(
                    "AUTOCALL_ENGINE_BIND must be an IP address of this machine (0.0.0.0 for "
                    f"any IPv4, :: for any IPv6) or empty, not {self.engine_bind!r}"
                ) from None

    @property
    def sip_port_range(self) -> PortRange | None:
        """AUTOCALL_SIP_PORTS read; None: any port."""
        return PortRange.parse(self.sip_ports)

    @property
    def sip_public_addresses(self) -> PublicAddresses:
        """AUTOCALL_SIP_PUBLIC_ADDRESS read."""
        return PublicAddresses.parse(self.sip_public_address)

    def _check_oidc(self) -> None:
        given = {
            "AUTOCALL_OIDC_ISSUER": self.oidc_issuer,
            "AUTOCALL_OIDC_CLIENT_ID": self.oidc_client_id,
            "AUTOCALL_OIDC_CLIENT_SECRET": self.oidc_client_secret,
        }
        missing = [name for name, value in given.items() if not value.strip()]
        if len(missing) == len(given):
            return  # single sign-on is off
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} must be set too: single sign-on needs the issuer, "
                "the client id and the client secret (or none of them, to leave it off)"
            )
        issuer = urlsplit(self.oidc_issuer)
        if not (
            issuer.hostname
            and not issuer.query
            and not issuer.fragment
            and (issuer.scheme == "https" or (issuer.scheme == "http" and _loopback(issuer)))
        ):
            raise ConfigError(
                "AUTOCALL_OIDC_ISSUER must be the provider's https:// URL without query or "
                f"fragment (http:// only on this machine), not {self.oidc_issuer!r}"
            )
        if not self.oidc_name.strip():
            raise ConfigError("AUTOCALL_OIDC_NAME must not be empty (it names the button)")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer.strip())

    @property
    def public_base_url(self) -> str:
        """Where the portal's links point: AUTOCALL_PUBLIC_URL, else this machine."""
        return self.public_url.strip().rstrip("/") or f"http://127.0.0.1:{self.web_port}"

    @property
    def oidc_discovery_url(self) -> str:
        return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def webhook_retries(self) -> tuple[int, ...]:
        """The delays of AUTOCALL_WEBHOOK_RETRY_SECONDS; empty: a single try."""
        return tuple(int(part) for part in self.webhook_retry_seconds.split(",") if part.strip())

    @property
    def webhook_private_allowed(self) -> bool:
        return self.env != "production" or self.webhook_allow_private

    @property
    def sip_private_allowed(self) -> bool:
        return self.env != "production" or self.sip_allow_private

    @property
    def logs(self) -> str:
        """The log format in effect."""
        return self.log_format or ("json" if self.env == "production" else "text")

    def flask_settings(self) -> dict:
        production = self.env == "production"
        return {
            "SECRET_KEY": self.secret_key,
            "TESTING": self.env == "testing",
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            # Cookies: never readable by scripts, not sent on cross-site posts, HTTPS only
            # in production (development runs on plain http://127.0.0.1).
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": production,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": production,
            "WTF_CSRF_ENABLED": True,
            "BABEL_DEFAULT_LOCALE": "en",
            "BABEL_DEFAULT_TIMEZONE": "UTC",
        }


def _loopback(url) -> bool:
    if url.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(url.hostname).is_loopback
    except ValueError:
        return False
