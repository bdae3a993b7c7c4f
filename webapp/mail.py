"""Outgoing mail (password resets, address confirmations). Backends (AUTOCALL_MAIL_BACKEND):

- `smtp`: through the server of AUTOCALL_SMTP_URL, sent by a job on the `default` queue so a
  slow or unreachable mail server never holds up a page; a failed send is tried again
  (`RETRIES`) and every failure is logged with its reason. When Redis is away the message is
  sent at once instead, so it is not lost with the job;
- `console` prints each message to standard output (development);
- `memory` appends it to `app.extensions["autocall.outbox"]` (tests).

AUTOCALL_SMTP_URL: `smtp://USER:PASSWORD@HOST:587` (STARTTLS, required: a server that does not
offer it is refused rather than sent the password in clear), `smtps://USER:PASSWORD@HOST:465`
(TLS from the first byte), or `smtp://HOST:25?tls=none` for a relay on a trusted network.
User and password are percent-encoded in the URL; they are never logged.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from flask import Flask, current_app
from rq import Retry

log = logging.getLogger(__name__)

#: Seconds every exchange with the mail server may take.
TIMEOUT = 15
#: Waits before the tries after a failed send: 1 min, 5 min, 30 min, 2 h.
RETRIES = (60, 300, 1800, 7200)
SCHEMES = ("smtp", "smtps")
TLS_MODES = ("starttls", "none")


class MailError(Exception):
    """The mail server refused the message or could not be reached; the message says why."""


@dataclass(frozen=True)
class Message:
    sender: str
    to: str
    subject: str
    body: str


def init_app(app: Flask) -> None:
    app.extensions["autocall.outbox"] = []
    config = app.extensions["autocall.config"]
    if config.env == "production" and config.mail_backend == "console":
        log.warning(
            "AUTOCALL_MAIL_BACKEND is console in production: password-reset links go "
            "to the log, not to the users; set smtp and AUTOCALL_SMTP_URL"
        )


def check_smtp_url(url: str) -> str | None:
    """What is wrong with an AUTOCALL_SMTP_URL, in a sentence; None when it is usable."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return "AUTOCALL_SMTP_URL must start with smtp:// (STARTTLS) or smtps:// (TLS)"
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return "AUTOCALL_SMTP_URL has a port that is not a number"
    if not parts.hostname:
        return "AUTOCALL_SMTP_URL names no mail server (smtp://user:password@host:587)"
    tls = parse_qs(parts.query).get("tls", ["starttls"])[-1]
    if tls not in TLS_MODES or (tls == "none" and parts.scheme == "smtps"):
        return "AUTOCALL_SMTP_URL's tls= may only be none, with smtp://"
    return None


def send_mail(to: str, subject: str, body: str) -> None:
    config = current_app.extensions["autocall.config"]
    message = Message(config.mail_sender, to, subject, body)
    if config.mail_backend == "memory":
        current_app.extensions["autocall.outbox"].append(message)
    elif config.mail_backend == "smtp":
        _send_later(message, config.smtp_url)
    else:
        print(
            f"----- mail -----\nFrom: {message.sender}\nTo: {message.to}\n"
            f"Subject: {message.subject}\n\n{message.body}\n----------------",
            file=sys.stdout,
            flush=True,
        )


def _send_later(message: Message, url: str) -> None:
    from webapp.jobs.queues import queue

    try:
        retry = Retry(max=len(RETRIES), interval=list(RETRIES))
        queue().enqueue(
            deliver_mail,
            message,
            retry=retry,
            job_timeout=3 * TIMEOUT,
            result_ttl=600,
            failure_ttl=7 * 86400,
        )
        return
    except (redis.RedisError, RuntimeError) as error:
        log.warning("mail to %s: no job queue (%s); sending it now", message.to, error)
    try:
        smtp_send(url, message)
    except MailError as error:
        log.error("mail to %s not sent: %s", message.to, error)


def deliver_mail(message: Message) -> None:
    """The job that sends one message; raises (and RQ tries again later) when it fails."""
    from webapp.jobs.queues import job_context

    with job_context() as app:
        url = app.extensions["autocall.config"].smtp_url
    try:
        smtp_send(url, message)
    except MailError as error:
        log.warning("mail to %s not sent (tried again later): %s", message.to, error)
        raise


def mime(message: Message) -> EmailMessage:
    """The message as sent: UTF-8 text, headers encoded where they are not ASCII."""
    mail = EmailMessage()
    mail["From"] = message.sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    domain = parseaddr(message.sender)[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid(domain=domain)
    mail.set_content(message.body)
    return mail


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login, which encodes credentials as ASCII; others go as AUTH PLAIN in UTF-8
    (RFC 4616), which servers that take such passwords understand."""
    if (user + password).isascii():
        client.login(user, password)
        return
    client.ehlo_or_helo_if_needed()
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def smtp_send(url: str, message: Message) -> None:
    """Send one message through the server of `url` (see the module's docstring)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parse_qs(parts.query).get("tls", ["starttls"])[-1]
    port = parts.port or (465 if parts.scheme == "smtps" else 587)
    context = ssl.create_default_context()
    where = f"the mail server {host}:{port}"
    try:
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with client:
            if parts.scheme == "smtp" and tls == "starttls":
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise MailError(
                        f"{where} does not offer STARTTLS; not sending in clear "
                        "(use smtps://, or ?tls=none for a trusted relay)"
                    )
                client.starttls(context=context)
            if parts.username:
                _login(client, unquote(parts.username), unquote(parts.password or ""))
            client.send_message(mime(message))
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise MailError(f"{where} refused the user name or password ({error.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as error:
        ((code, reason),) = error.recipients.values()
        raise MailError(
            f"{where} refused the address {message.to}: {code} {reason.decode(errors='replace')}"
        ) from None
    except smtplib.SMTPResponseException as error:
        raise MailError(
            f"{where} answered {error.smtp_code} {error.smtp_error.decode(errors='replace')}"
        ) from None
    except ssl.SSLError as error:
        raise MailError(f"{where}: TLS failed ({error.reason or error})") from None
    except (OSError, smtplib.SMTPException) as error:
        raise MailError(f"cannot reach {where}: {error}") from None
