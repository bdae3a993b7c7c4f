"""The portal's sign-in defences (docs/portal.md, "Authentication"): links in mail point
at AUTOCALL_PUBLIC_URL whatever the request's Host says; the sign-in throttle counts each
attempt before checking its password, against the portal served over loopback HTTP by a
threaded server with real parallel requests; sign-out ends copied sessions."""

import re
from dataclasses import replace

import pytest

from tests.conftest import PASSWORD

PUBLIC_URL = "https://portal.example.com"


@pytest.fixture
def config_overrides():
    # One proxy trusted: X-Forwarded-Host would name the host of links built from the request.
    return {"public_url": PUBLIC_URL, "trusted_proxies": 1}


FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def test_a_reset_link_points_at_the_public_url_whatever_the_host(client, outbox, tenant_a):
    client.post("/reset", data={"email": tenant_a.admin_email}, headers=FORGED)
    (message,) = outbox
    assert "evil.example" not in message.body
    assert re.search(rf"{re.escape(PUBLIC_URL)}/reset/\S+", message.body)


def _reconfigure(app, **changes):
    app.extensions["autocall.config"] = replace(app.extensions["autocall.config"], **changes)


def test_a_verification_link_points_at_the_public_url_whatever_the_host(app, client, outbox):
    _reconfigure(app, email_verification=True)
    data = {"company": "NewCo", "email": "boss@newco.example", "password": PASSWORD,
            "confirm": PASSWORD}  # fmt: skip
    client.post("/signup", data=data, headers=FORGED)
    (message,) = outbox
    assert "evil.example" not in message.body
    assert re.search(rf"{re.escape(PUBLIC_URL)}/verify/\S+", message.body)


@pytest.mark.parametrize(
    ("public_url", "start"),
    [
        ("https://calls.example.com/", "https://calls.example.com/reset/"),
        ("https://example.com/autocall", "https://example.com/autocall/reset/"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080/reset/"),
    ],
)
def test_the_public_url_may_have_a_port_or_a_path(app, client, outbox, tenant_a, public_url,
                                                  start):  # fmt: skip
    _reconfigure(app, public_url=public_url)
    client.post("/reset", data={"email": tenant_a.admin_email}, headers=FORGED)
    assert start in outbox[-1].body
