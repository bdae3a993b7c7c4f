"""The `smtp` mail backend against a real SMTP server on loopback (aiosmtpd): sent by a real RQ
job, with STARTTLS and a login, Russian text intact; and what happens when the server cannot
be reached, refuses, or offers no TLS."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import logging
import re
import socket
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rq import Queue

from tests.conftest import app_config
from tests.webapp.jobs import run_jobs
from webapp.config import Config, ConfigError
from webapp.mail import MailError, Message, send_mail, smtp_send

USER, PASSWORD = "mailer", "p@ss word/ü"  # percent-encoded in the URL
URL_PASSWORD = "p%40ss%20word%2F%C3%BC"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd's handler: keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


def _login(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and (auth_data.password == PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost / 127.0.0.1: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _server(**options):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), **options)
    controller.start()
    return controller, inbox


@pytest.fixture
def tls_server(certificate, monkeypatch):
    """STARTTLS required, a login required; our client trusts its certificate."""
    import ssl

    cert_file, key_file = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # read by ssl.create_default_context()
    controller, inbox = _server(
        tls_context=context, require_starttls=True, auth_required=True, authenticator=_login
    )
    yield f"smtp://{USER}:{URL_PASSWORD}@localhost:{controller.port}", inbox
    controller.stop()


@pytest.fixture
def plain_server():
    """No TLS at all (a relay on a trusted network)."""
    controller, inbox = _server(auth_require_tls=False, authenticator=_login)
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def config_overrides(tls_server):
    return {"mail_backend": "smtp", "smtp_url": tls_server[0]}


def test_a_password_reset_mail_goes_out_through_starttls_in_russian(
    app, client, tenant_a, tls_server
):
    _, inbox = tls_server
    response = client.post(
        "/reset", data={"email": tenant_a.admin_email}, headers={"Accept-Language": "ru"}
    )
    assert response.status_code == 302
    assert inbox.messages == []  # sent by a job, not by the request
    run_jobs(app)
    (message,) = inbox.messages
    assert message["To"] == tenant_a.admin_email
    assert message["From"] == "AutoCall Cloud <no-reply@autocall.local>"
    assert message["Message-ID"].endswith("@autocall.local>")
    body = message.get_content()
    assert "/reset/" in body
    assert any("а" <= ch <= "я" for ch in message["Subject"] + body)  # Russian, decoded intact


def test_a_mail_server_that_is_down_does_not_break_the_page_and_the_job_retries(
    app, client, tenant_a, caplog
):
    port = _free_port()  # nothing listens there
    config = app.extensions["autocall.config"]
    app.extensions["autocall.config"] = replace(config, smtp_url=f"smtp://127.0.0.1:{port}")
    with app.app_context():
        from webapp.jobs.queues import queue

        default: Queue = queue()
        waiting = set(default.scheduled_job_registry.get_job_ids())  # earlier tests' jobs
    response = client.post("/reset", data={"email": tenant_a.admin_email})
    assert response.status_code == 302
    with caplog.at_level(logging.WARNING, logger="webapp.mail"):
        run_jobs(app)
    assert f"cannot reach the mail server 127.0.0.1:{port}" in caplog.text
    # The job waits for its next try (RQ's scheduler enqueues it when due).
    (job_id,) = set(default.scheduled_job_registry.get_job_ids()) - waiting
    job = default.fetch_job(job_id)
    assert job.retries_left == 3 and job.retry_intervals == [60, 300, 1800, 7200]
    assert job.args[0].to == tenant_a.admin_email


def test_sent_at_once_when_redis_is_away(tmp_path, plain_server):
    from webapp import create_app

    port, inbox = plain_server
    app = create_app(
        app_config(
            f"sqlite:///{tmp_path / 'mail.db'}",
            mail_backend="smtp",
            smtp_url=f"smtp://{USER}:{URL_PASSWORD}@127.0.0.1:{port}?tls=none",
            redis_url=f"redis://127.0.0.1:{_free_port()}/0",
        )
    )
    with app.app_context():
        send_mail("ops@example.com", "Проверка", "Письмо без очереди")
    (message,) = inbox.messages
    assert (message["Subject"], message.get_content().strip()) == ("Проверка", "Письмо без очереди")


def test_no_starttls_offered_is_refused_rather_than_sending_the_password_in_clear(plain_server):
    port, inbox = plain_server
    message = Message("a@autocall.local", "b@example.com", "s", "b")
    with pytest.raises(MailError, match="does not offer STARTTLS"):
        smtp_send(f"smtp://{USER}:{URL_PASSWORD}@127.0.0.1:{port}", message)
    assert inbox.messages == []


def test_a_wrong_password_and_a_refused_address_say_so(plain_server):
    port, inbox = plain_server
    message = Message("a@autocall.local", "b@example.com", "s", "b")
    with pytest.raises(MailError, match="refused the user name or password"):
        smtp_send(f"smtp://{USER}:wrong@127.0.0.1:{port}?tls=none", message)
    with pytest.raises(
        MailError, match=re.escape("refused the address nobody@refused.example: 550 5.1.1 No such")
    ):
        smtp_send(
            f"smtp://127.0.0.1:{port}?tls=none",
            Message("a@autocall.local", "nobody@refused.example", "s", "b"),
        )
    assert inbox.messages == []


def test_tls_with_a_certificate_we_do_not_trust_is_refused(certificate):
    import ssl

    cert_file, key_file = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    controller, inbox = _server(tls_context=context, require_starttls=True)
    try:  # SSL_CERT_FILE is not set here: the self-signed certificate is unknown
        with pytest.raises(MailError, match="TLS failed"):
            smtp_send(
                f"smtp://localhost:{controller.port}",
                Message("a@autocall.local", "b@example.com", "s", "b"),
            )
    finally:
        controller.stop()
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "must start with smtp://"),
        ("http://mail.example.com", "must start with smtp://"),
        ("smtp://", "names no mail server"),
        ("smtp://mail.example.com:abc", "port that is not a number"),
        ("smtps://mail.example.com?tls=none", "tls= may only be none, with smtp://"),
        ("smtp://mail.example.com?tls=maybe", "tls= may only be none"),
    ],
)
def test_a_bad_smtp_url_is_refused_at_start(url, words):
    with pytest.raises(ConfigError, match=words):
        Config.from_env(environ={"AUTOCALL_MAIL_BACKEND": "smtp", "AUTOCALL_SMTP_URL": url})


def test_good_smtp_urls_are_accepted():
    for url in (
        "smtp://u:p@mail.example.com:587",
        "smtps://mail.example.com",
        "smtp://10.0.0.5:25?tls=none",
    ):
        Config.from_env(environ={"AUTOCALL_MAIL_BACKEND": "smtp", "AUTOCALL_SMTP_URL": url})
