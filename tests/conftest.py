"""Shared fixtures: every web test runs against SQLite and against the real PostgreSQL.

PostgreSQL gets a uniquely named database for the test session, dropped at the end, so
runs never see each other's rows. Redis is the machine's real one (127.0.0.1:6379).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery"


def _create_database(prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, f"{PG_SERVER}/{name}"


def _drop_database(name: str) -> None:
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database():
    """Creates a fresh PostgreSQL database for a test session; yields its URL."""
    created = []

    def make(prefix: str = "autocall_test") -> str:
        name, url = _create_database(prefix)
        created.append(name)
        return url

    yield make
    for name in created:
        _drop_database(name)


@pytest.fixture(scope="session")
def postgres_url(postgres_database) -> str:
    return postgres_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch):
    """Argon2 with its production cost takes ~50 ms a hash; tests make hundreds."""
    import webapp.models.user

    monkeypatch.setattr(
        webapp.models.user, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


#: Every Redis key of this test session starts with this, so concurrent runs on the same
#: Redis (another worktree, CI) never share sign-in counters.
REDIS_PREFIX = f"ac-test-{uuid.uuid4().hex[:12]}:"


def _delete_own_keys() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(REDIS_PREFIX + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _clean_redis_keys():
    _delete_own_keys()


@pytest.fixture(scope="session", autouse=True)
def _remove_redis_keys_at_the_end():
    yield
    _delete_own_keys()


def app_config(database_url: str, **overrides) -> dict:
    return {
        "env": "testing",
        "secret_key": "test-secret-key",
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": REDIS_PREFIX,
        "mail_backend": "memory",
        **overrides,
    }


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module to build the app with other settings."""
    return {}


@pytest.fixture
def app(database_url, config_overrides):
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(app_config(database_url, **config_overrides))
    app.config["WTF_CSRF_ENABLED"] = False  # tests/webapp/test_csrf.py turns it back on
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app) -> list:
    return app.extensions["autocall.outbox"]


class AuthActions:
    def __init__(self, client) -> None:
        self._client = client

    def login(self, email: str, password: str = PASSWORD, follow: bool = False):
        return self._client.post(
            "/login", data={"email": email, "password": password}, follow_redirects=follow
        )

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@dataclass
class TenantFixture:
    """One tenant with a person of each role, a team and an operator."""

    id: int
    admin_email: str
    supervisor_email: str
    operator_email: str
    team_id: int
    operator_id: int
    supervisor_id: int
    lead_id: int
    api_token_id: int
    api_client_id: int
    webhook_id: int


def make_tenant(app, name: str) -> TenantFixture:
    from webapp.extensions import db
    from webapp.models import Attempt, Lead, Role, Team, WebhookEndpoint
    from webapp.services.accounts import create_operator, create_tenant_with_admin, new_user
    from webapp.services.api_access import create_client, create_token

    slug = name.lower().replace(" ", "-")
    with app.app_context():
        admin = create_tenant_with_admin(name, f"admin@{slug}.example", PASSWORD)
        tenant = admin.tenant
        supervisor = new_user(f"supervisor@{slug}.example", PASSWORD, Role.SUPERVISOR, tenant)
        team = Team(tenant_id=tenant.id, name=f"{name} team")
        db.session.add(team)
        db.session.flush()
        operator = create_operator(
            tenant,
            name=f"{name} operator",
            email=f"operator@{slug}.example",
            extension="101",
            password=PASSWORD,
            team_id=team.id,
        )
        operator.user.must_change_password = False
        lead = Lead(
            tenant_id=tenant.id,
            phone="+15550100" + str(tenant.id).zfill(3),
            name=f"{name} lead",
            external_id=f"{slug}-crm-1",
            card={"order": f"{name} order"},
        )
        db.session.add(lead)
        db.session.flush()
        db.session.add(
            Attempt(
                tenant_id=tenant.id,
                lead_id=lead.id,
                operator_id=operator.id,
                dialed_uri=f"sip:{lead.phone}@pbx.{slug}.example",
                outcome="answered",
                sip_code=200,
                sip_reason="OK",
                invite_at=datetime.now(UTC),
                transfer_result="succeeded",
            )
        )
        webhook = WebhookEndpoint(
            tenant_id=tenant.id,
            url=f"https://crm.{slug}.example/hooks",
            secret_encrypted=app.extensions["autocall.secrets"].encrypt(f"{slug}-secret"),
        )
        db.session.add(webhook)
        db.session.commit()
        api_token, _bearer = create_token(tenant.id, f"{name} CRM")
        api_client, _secret = create_client(tenant.id, f"{name} website")
        return TenantFixture(
            id=tenant.id,
            admin_email=admin.email,
            supervisor_email=f"supervisor@{slug}.example",
            operator_email=operator.user.email,
            team_id=team.id,
            operator_id=operator.id,
            supervisor_id=supervisor.id,
            lead_id=lead.id,
            api_token_id=api_token.id,
            api_client_id=api_client.id,
            webhook_id=webhook.id,
        )


def login_as(email: str):
    """Sign the request under way in as the user with this email, as the sign-in page does:
    the user is found across tenants (webapp/tenancy.py), then the request takes its scope
    (a fresh transaction follows, as after the portal's own before_request hook)."""
    from flask_login import login_user

    from webapp.extensions import db
    from webapp.models import User
    from webapp.tenancy import across_tenants

    with across_tenants():
        user = db.session.scalar(db.select(User).where(User.email == email))
    login_user(user)
    db.session.commit()
    return user


@pytest.fixture
def tenant_a(app) -> TenantFixture:
    return make_tenant(app, "Alpha")


@pytest.fixture
def tenant_b(app) -> TenantFixture:
    return make_tenant(app, "Bravo")


@pytest.fixture
def staff_email(app) -> str:
    from webapp.services.accounts import create_staff

    with app.app_context():
        return create_staff("staff@autocall.example", PASSWORD).email


@pytest.fixture
def pbx(tmp_path):
    """Start SIPp playing a PBX from tests/sipp/SCENARIO (see tests/sipp.py); stopped after."""
    from tests.sipp import SIPp

    started = []

    def start(scenario: str, **kwargs) -> SIPp:
        peer = SIPp(scenario, tmp_path, **kwargs)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def dns_server(tmp_path):
    """The PBX's DNS: start dnsmasq (tests/dnsmasq.py) on 127.0.0.1 serving the records
    given (dnsmasq options, and `ttl=`); stopped after the test."""
    from tests.dnsmasq import DnsServer

    started = []

    def start(*records: str, ttl: int = 60) -> DnsServer:
        server = DnsServer(tmp_path, list(records), ttl=ttl)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
