"""Outgoing mail. Backends: `console` prints each message to standard output (development),
`memory` appends it to `app.extensions["autocall.outbox"]` (tests)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from flask import Flask, current_app


@dataclass(frozen=True)
class Message:
    sender: str
    to: str
    subject: str
    body: str


def init_app(app: Flask) -> None:
    app.extensions["autocall.outbox"] = []


def send_mail(to: str, subject: str, body: str) -> None:
    config = current_app.extensions["autocall.config"]
    message = Message(config.mail_sender, to, subject, body)
    if config.mail_backend == "memory":
        current_app.extensions["autocall.outbox"].append(message)
        return
    print(
        f"----- mail -----\nFrom: {message.sender}\nTo: {message.to}\n"
        f"Subject: {message.subject}\n\n{message.body}\n----------------",
        file=sys.stdout,
        flush=True,
    )
