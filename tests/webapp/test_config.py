import pytest

from webapp.config import DEV_ENCRYPTION_KEY, Config, ConfigError


def test_defaults_are_usable_for_development():
    config = Config.from_env(environ={})
    assert config.env == "development"
    assert config.email_verification is False
    assert config.encryption_key == DEV_ENCRYPTION_KEY


def test_reads_typed_values_from_the_environment():
    config = Config.from_env(
        environ={
            "AUTOCALL_WEB_PORT": "8080",
            "AUTOCALL_EMAIL_VERIFICATION": "yes",
            "AUTOCALL_LOGIN_ATTEMPTS": "3",
            "AUTOCALL_MAIL_BACKEND": "memory",
        }
    )
    assert config.web_port == 8080
    assert config.email_verification is True
    assert config.login_attempts == 3
    assert config.mail_backend == "memory"


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"AUTOCALL_WEB_PORT": "eighty"}, "AUTOCALL_WEB_PORT must be a whole number"),
        ({"AUTOCALL_EMAIL_VERIFICATION": "maybe"}, "AUTOCALL_EMAIL_VERIFICATION must be 1 or 0"),
        ({"AUTOCALL_ENCRYPTION_KEY": "short"}, "AUTOCALL_ENCRYPTION_KEY must be a Fernet key"),
        (
            {"AUTOCALL_MAIL_BACKEND": "pigeon"},
            "AUTOCALL_MAIL_BACKEND must be smtp, console or memory",
        ),
        ({"AUTOCALL_LOGIN_ATTEMPTS": "0"}, "AUTOCALL_LOGIN_ATTEMPTS must be at least 1"),
        ({"AUTOCALL_IMPORT_MAX_MEGABYTES": "0"}, "AUTOCALL_IMPORT_MAX_MEGABYTES must be at"),
        ({"AUTOCALL_ENV": "staging"}, "AUTOCALL_ENV must be"),
        ({"AUTOCALL_WEBHOOK_RETRY_SECONDS": "60,5m"}, "AUTOCALL_WEBHOOK_RETRY_SECONDS must be"),
        ({"AUTOCALL_WEBHOOK_RETRY_SECONDS": "-1"}, "AUTOCALL_WEBHOOK_RETRY_SECONDS must be"),
    ],
)
def test_bad_values_fail_loudly_and_name_the_variable(environ, words):
    with pytest.raises(ConfigError, match=words):
        Config.from_env(environ=environ)


OIDC = {
    "AUTOCALL_OIDC_ISSUER": "https://id.example.com/realms/callcentre",
    "AUTOCALL_OIDC_CLIENT_ID": "autocall",
    "AUTOCALL_OIDC_CLIENT_SECRET": "s3cret",
}


def test_single_sign_on_is_off_by_default_and_on_with_all_three_settings():
    off = Config.from_env(environ={})
    assert not off.oidc_enabled and off.oidc_name == "single sign-on"
    on = Config.from_env(environ={**OIDC, "AUTOCALL_OIDC_NAME": "Keycloak"})
    assert on.oidc_enabled and on.oidc_name == "Keycloak"
    assert on.oidc_discovery_url == (
        "https://id.example.com/realms/callcentre/.well-known/openid-configuration"
    )
    local = Config.from_env(environ={**OIDC, "AUTOCALL_OIDC_ISSUER": "http://127.0.0.1:8080/"})
    assert local.oidc_discovery_url == "http://127.0.0.1:8080/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        (
            {"AUTOCALL_OIDC_ISSUER": OIDC["AUTOCALL_OIDC_ISSUER"]},
            "AUTOCALL_OIDC_CLIENT_ID and AUTOCALL_OIDC_CLIENT_SECRET must be set too",
        ),
        ({**OIDC, "AUTOCALL_OIDC_CLIENT_SECRET": ""}, "AUTOCALL_OIDC_CLIENT_SECRET must be set"),
        ({**OIDC, "AUTOCALL_OIDC_ISSUER": " "}, "AUTOCALL_OIDC_ISSUER must be set too"),
        ({**OIDC, "AUTOCALL_OIDC_ISSUER": "http://id.example.com"}, "must be the provider's"),
        ({**OIDC, "AUTOCALL_OIDC_ISSUER": "id.example.com"}, "AUTOCALL_OIDC_ISSUER must be"),
        ({**OIDC, "AUTOCALL_OIDC_ISSUER": "https://id.example.com/?x=1"}, "without query"),
        ({**OIDC, "AUTOCALL_OIDC_NAME": " "}, "AUTOCALL_OIDC_NAME must not be empty"),
    ],
)
def test_partial_or_bad_single_sign_on_settings_fail_and_name_what_is_wrong(environ, words):
    with pytest.raises(ConfigError, match=words):
        Config.from_env(environ=environ)


PRODUCTION = {
    "AUTOCALL_ENV": "production",
    "AUTOCALL_SECRET_KEY": "s" * 32,
    "AUTOCALL_ENCRYPTION_KEY": "a" * 43 + "=",
    "AUTOCALL_PUBLIC_URL": "https://autocall.example.com",
}


def test_production_needs_the_public_url_for_links_in_mail():
    without = {name: value for name, value in PRODUCTION.items() if name != "AUTOCALL_PUBLIC_URL"}
    with pytest.raises(ConfigError, match="AUTOCALL_PUBLIC_URL must be set in production"):
        Config.from_env(environ=without)
    with pytest.raises(ConfigError, match="AUTOCALL_PUBLIC_URL must be set in production"):
        Config.from_env(environ={**without, "AUTOCALL_PUBLIC_URL": " "})
    with pytest.raises(ConfigError, match=r"https:// in production"):
        Config.from_env(
            environ={**PRODUCTION, "AUTOCALL_PUBLIC_URL": "http://autocall.example.com"}
        )
    config = Config.from_env(environ={**PRODUCTION, "AUTOCALL_PUBLIC_URL": "https://a.example/x/"})
    assert config.public_base_url == "https://a.example/x"


def test_elsewhere_links_point_at_this_machine_unless_told():
    assert Config.from_env(environ={}).public_base_url == "http://127.0.0.1:5000"
    assert Config.from_env(environ={"AUTOCALL_WEB_PORT": "8000"}).public_base_url == (
        "http://127.0.0.1:8000"
    )
    config = Config.from_env(environ={"AUTOCALL_PUBLIC_URL": "http://dev.example:8080"})
    assert config.public_base_url == "http://dev.example:8080"


@pytest.mark.parametrize(
    "url",
    [
        "autocall.example.com",
        "ftp://autocall.example.com",
        "https://",
        "https://autocall.example.com/?next=x",
        "https://autocall.example.com/#top",
        "https://user:password@autocall.example.com",
        "https://autocall.example.com:port",
    ],
)
def test_a_public_url_that_is_not_one_is_refused(url):
    with pytest.raises(ConfigError, match="AUTOCALL_PUBLIC_URL must be the portal's address"):
        Config.from_env(environ={"AUTOCALL_PUBLIC_URL": url})


def test_production_needs_its_own_secret_and_encryption_keys():
    with pytest.raises(ConfigError, match="AUTOCALL_SECRET_KEY"):
        Config.from_env(environ={"AUTOCALL_ENV": "production"})
    with pytest.raises(ConfigError, match="AUTOCALL_ENCRYPTION_KEY must be set"):
        Config.from_env(environ={"AUTOCALL_ENV": "production", "AUTOCALL_SECRET_KEY": "s" * 32})
    for short in ("", "secret"):  # an empty key from an unfilled .env, a word
        with pytest.raises(ConfigError, match="at least 32 random characters"):
            Config.from_env(environ={"AUTOCALL_ENV": "production", "AUTOCALL_SECRET_KEY": short})


def test_cookies_are_http_only_same_site_and_secure_in_production():
    from cryptography.fernet import Fernet

    dev = Config.from_env(environ={}).flask_settings()
    prod = Config.from_env(
        environ={
            **PRODUCTION,
            "AUTOCALL_SECRET_KEY": "a-real-secret-" + "x" * 32,
            "AUTOCALL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        }
    ).flask_settings()
    for settings in (dev, prod):
        assert settings["SESSION_COOKIE_HTTPONLY"] is True
        assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"
        assert settings["REMEMBER_COOKIE_HTTPONLY"] is True
    assert dev["SESSION_COOKIE_SECURE"] is False
    assert prod["SESSION_COOKIE_SECURE"] is True
    assert prod["REMEMBER_COOKIE_SECURE"] is True


def test_webhook_retries_and_private_addresses():
    assert Config.from_env(environ={}).webhook_retries == (60, 300, 1800, 7200, 21600)
    config = Config.from_env(environ={"AUTOCALL_WEBHOOK_RETRY_SECONDS": " 5, 10 "})
    assert config.webhook_retries == (5, 10)
    assert Config.from_env(environ={"AUTOCALL_WEBHOOK_RETRY_SECONDS": ""}).webhook_retries == ()
    assert Config.from_env(environ={}).webhook_private_allowed is True
    assert Config.from_env(environ=PRODUCTION).webhook_private_allowed is False
    allowed = {**PRODUCTION, "AUTOCALL_WEBHOOK_ALLOW_PRIVATE": "1"}
    assert Config.from_env(environ=allowed).webhook_private_allowed is True
    assert Config.from_env(environ=allowed).sip_private_allowed is False  # each its own
    assert Config.from_env(environ={}).sip_private_allowed is True  # the demo's PBX: 127.0.0.1
    assert Config.from_env(environ=PRODUCTION).sip_private_allowed is False
    allowed = {**PRODUCTION, "AUTOCALL_SIP_ALLOW_PRIVATE": "1"}
    assert Config.from_env(environ=allowed).sip_private_allowed is True


def test_the_sip_network_settings():
    """The engines' port range, public address and bind (engine/sip/nat.py), read once and
    refused in words when they cannot be used."""
    from engine.sip.nat import PortRange

    config = Config.from_env(
        environ={
            "AUTOCALL_SIP_PORTS": "5070-5199",
            "AUTOCALL_SIP_PUBLIC_ADDRESS": "203.0.113.7,[2001:db8::7]",
            "AUTOCALL_ENGINE_BIND": "::",
        }
    )
    assert config.sip_port_range == PortRange(5070, 5199)
    assert config.sip_public_addresses.addresses == ("203.0.113.7", "2001:db8::7")
    unset = Config.from_env(environ={})
    assert (unset.sip_port_range, unset.engine_bind) == (None, "")
    assert unset.sip_public_addresses.addresses == ()
    for name, value, words in [
        ("AUTOCALL_SIP_PORTS", "5199-5070", "AUTOCALL_SIP_PORTS: '5199-5070' must be ports"),
        ("AUTOCALL_SIP_PUBLIC_ADDRESS", "nat.example.com", "is not an IP address"),
        ("AUTOCALL_ENGINE_BIND", "eth0", "AUTOCALL_ENGINE_BIND must be an IP address"),
    ]:
        with pytest.raises(ConfigError, match=words):
            Config.from_env(environ={name: value})
