import dataclasses
import json
import logging
import re
import time

import pytest
from sqlalchemy import select

from engine.formats import DEFAULT_DIAL_FORMAT
from webapp import bus
from webapp.extensions import db
from webapp.models import Campaign, SipAccount, Tenant

SIP = {
    "name": "Main trunk",
    "host": "pbx.alpha.example",
    "port": "5060",
    "transport": "udp",
    "username": "dialer",
    "auth_username": "",
    "password": "",
    "outbound_proxy": "",
    "realm": "",
}

COMPANY = {"time_zone": "Europe/Moscow", "default_phone_region": "RU"}


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _tenant(app, tenant_id) -> Tenant:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        db.session.expunge(tenant)
        return tenant


def _accounts(app, tenant_id) -> list[SipAccount]:
    with app.app_context():
        accounts = db.session.scalars(
            select(SipAccount).where(SipAccount.tenant_id == tenant_id).order_by(SipAccount.id)
        ).all()
        db.session.expunge_all()
        return list(accounts)


def _campaigns(app, tenant_id) -> list[Campaign]:
    with app.app_context():
        campaigns = db.session.scalars(
            select(Campaign).where(Campaign.tenant_id == tenant_id).order_by(Campaign.id)
        ).all()
        db.session.expunge_all()
        return list(campaigns)


def _new(client, **changes) -> int:
    """Adds an account through the page; its id."""
    response = client.post("/settings/sip/new", data={**SIP, **changes})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_settings_start_with_the_sip_accounts(client, admin):
    assert client.get("/settings/").headers["Location"].endswith("/settings/sip")
    page = client.get("/settings/sip").get_data(as_text=True)
    assert "No SIP account yet" in page and "New SIP account" in page


def test_the_first_account_goes_to_every_campaign_without_one(app, client, admin):
    with app.app_context():
        from webapp.services.campaigns import create_campaign

        create_campaign(db.session.get(Tenant, admin.id), "Alpha TV", "tv", None)
    first = _new(client)
    assert [c.sip_account_id for c in _campaigns(app, admin.id)] == [first, first]
    second = _new(client, name="Second trunk", host="pbx2.alpha.example")
    assert [c.sip_account_id for c in _campaigns(app, admin.id)] == [first, first]
    page = client.get("/settings/sip").get_data(as_text=True)
    assert "Main trunk" in page and "Second trunk" in page
    assert "pbx.alpha.example:5060" in page and "pbx2.alpha.example:5060" in page
    row = page[page.index(f'data-sip-account="{second}"') :]
    assert "no campaign" in row[: row.index("</tr>")]
    row = page[page.index(f'data-sip-account="{first}"') :]
    assert "Default" in row[: row.index("</tr>")]


def test_account_names_are_unique_in_the_tenant(app, client, admin):
    _new(client)
    response = client.post("/settings/sip/new", data=SIP)
    assert response.status_code == 200
    assert "Another SIP account has this name." in response.get_data(as_text=True)
    assert len(_accounts(app, admin.id)) == 1


def test_sip_password_is_encrypted_never_shown_and_never_logged(app, client, admin, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-SIP-pass"
    account_id = _new(client, password=secret)
    (account,) = _accounts(app, admin.id)
    assert account.host == "pbx.alpha.example"
    assert account.password_encrypted and secret not in account.password_encrypted
    box = app.extensions["autocall.secrets"]
    assert box.decrypt(account.password_encrypted) == secret
    page = client.get(f"/settings/sip/{account_id}").get_data(as_text=True)
    assert secret not in page
    assert account.password_encrypted not in page
    assert "A password is saved." in page
    assert secret not in caplog.text


def test_an_empty_password_field_keeps_the_saved_password(app, client, admin):
    account_id = _new(client, password="first")
    before = _accounts(app, admin.id)[0].password_encrypted
    client.post(f"/settings/sip/{account_id}", data={**SIP, "port": "5080"})
    (account,) = _accounts(app, admin.id)
    assert account.port == 5080
    assert account.password_encrypted == before


def test_the_saved_password_can_be_removed(app, client, admin):
    account_id = _new(client, password="first")
    client.post(f"/settings/sip/{account_id}", data={**SIP, "clear_password": "y"})
    assert _accounts(app, admin.id)[0].password_encrypted is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("name", "", "This field is required."),
        ("host", "sip:pbx.example.com", "without sip:"),
        ("host", "pbx example", "without sip:"),
        ("port", "70000", "between 1 and 65535"),
        ("username", "dial er", "no spaces"),
        ("outbound_proxy", "sip:proxy", "host or host:port"),
        ("transport", "sctp", "Not a valid choice"),
        ("realm", 'a"b', "cannot contain quotes"),
        ("transfer_wait_seconds", "4", "between 5 and 120"),
        ("transfer_wait_seconds", "121", "between 5 and 120"),
        ("transfer_wait_seconds", "half a minute", "Not a valid integer value"),
    ],
)
def test_sip_account_explains_bad_values(app, client, admin, field, value, words):
    response = client.post("/settings/sip/new", data={**SIP, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    account_id = _new(client)
    response = client.post(f"/settings/sip/{account_id}", data={**SIP, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    assert _accounts(app, admin.id)[0].host == "pbx.alpha.example"


@pytest.mark.parametrize(
    ("field", "value", "saved"),
    [
        ("host", "[2001:db8::10]", "[2001:db8::10]"),
        ("host", "2001:db8::10", "[2001:db8::10]"),  # no port can follow: bracketed for URIs
        ("outbound_proxy", "[2001:db8::1]:5070", "[2001:db8::1]:5070"),
        ("outbound_proxy", "[::1]", "[::1]"),
    ],
)
def test_ipv6_addresses_are_taken_in_brackets(app, client, admin, field, value, saved):
    _new(client, **{field: value})
    assert getattr(_accounts(app, admin.id)[0], field) == saved


@pytest.mark.parametrize(
    ("field", "value"),
    [("host", "[2001:db8::1::2]"), ("host", "[:::]"), ("outbound_proxy", "[1:2:3]:5060")],
)
def test_a_bracketed_address_that_is_no_ipv6_address_is_refused(client, admin, field, value):
    response = client.post("/settings/sip/new", data={**SIP, field: value})
    assert "Write an IPv6 address in brackets, e.g. [2001:db8::1]." in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"sip_public_address": "203.0.113.7", "sip_ports": "5070-5199"},
            "address 203.0.113.7, UDP ports 5070\u20135199.",
        ),
        ({"sip_public_address": "203.0.113.7, 2001:db8::7"}, "address 203.0.113.7, 2001:db8::7."),
        ({"sip_ports": "5070"}, "UDP ports 5070 (from this service&#39;s address)."),
    ],
)
def test_the_sip_page_says_what_to_allow_in_the_pbxs_firewall(app, client, admin, settings, line):
    """The deployment's public address and SIP port range, from its own settings (the same
    the engines read), in English and Russian; nothing when neither is set."""
    assert 'id="firewall"' not in client.get("/settings/sip").get_data(as_text=True)
    config = app.extensions["autocall.config"]
    app.extensions["autocall.config"] = dataclasses.replace(config, **settings)
    try:
        page = client.get("/settings/sip").get_data(as_text=True)
        russian = client.get("/settings/sip", headers={"Accept-Language": "ru"})
    finally:
        app.extensions["autocall.config"] = config
    assert "Allow these in your PBX&#39;s firewall: " + line in page
    assert "Разрешите в межсетевом экране вашей АТС" in russian.get_data(as_text=True)


def test_the_wait_for_a_transfers_result_is_each_accounts(app, client, admin):
    """30 s unless the admin says otherwise; 5 to 120 s; explained on the page in English and
    Russian; a post that leaves it out keeps what is saved."""
    first = _new(client)
    second = _new(client, name="Second trunk", transfer_wait_seconds="75")
    assert [a.transfer_wait_seconds for a in _accounts(app, admin.id)] == [30, 75]
    data = {**SIP, "transfer_wait_seconds": "12"}
    assert client.post(f"/settings/sip/{first}", data=data).status_code == 302
    left_out = {**SIP, "name": "Second trunk"}
    assert client.post(f"/settings/sip/{second}", data=left_out).status_code == 302
    assert [a.transfer_wait_seconds for a in _accounts(app, admin.id)] == [12, 75]
    page = client.get(f"/settings/sip/{first}").get_data(as_text=True)
    assert 'name="transfer_wait_seconds"' in page and 'value="12"' in page
    blank = client.get("/settings/sip/new").get_data(as_text=True)
    assert 'name="transfer_wait_seconds"' in blank and 'value="30"' in blank
    assert "for your PBX to say whether the operator answered" in page
    russian = client.get(f"/settings/sip/{first}", headers={"Accept-Language": "ru"})
    words = russian.get_data(as_text=True)
    assert "Ожидание результата перевода, секунд" in words
    assert "ответил ли оператор" in words


@pytest.fixture
def production(app):
    """The app as deployed: `production(**settings)` changes the configuration further."""
    config = app.extensions["autocall.config"]

    def configure(**settings) -> None:
        app.extensions["autocall.config"] = dataclasses.replace(
            config, env="production", **settings
        )

    configure()
    yield configure
    app.extensions["autocall.config"] = config


@pytest.mark.parametrize(
    ("changes", "host"),
    [
        ({"host": "127.0.0.1"}, "127.0.0.1"),
        ({"host": "localhost"}, "localhost"),
        ({"host": "10.1.2.3"}, "10.1.2.3"),
        ({"host": "169.254.169.254"}, "169.254.169.254"),  # a cloud's metadata service
        ({"host": "[::1]"}, "::1"),
        ({"host": "8.8.8.8", "outbound_proxy": "192.168.1.1:5070"}, "192.168.1.1"),
    ],
)
def test_production_refuses_a_pbx_in_a_private_network(
    app, client, admin, production, changes, host
):
    response = client.post("/settings/sip/new", data={**SIP, **changes})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"{host} is " in page and "a private, loopback or link-local address" in page
    assert _accounts(app, admin.id) == []  # nothing saved
    russian = client.post(
        "/settings/sip/new", data={**SIP, **changes}, headers={"Accept-Language": "ru"}
    )
    assert "частный, локальный (loopback) или link-local адрес" in russian.get_data(as_text=True)


def test_production_takes_a_public_pbx_and_a_private_one_when_allowed(
    app, client, admin, production
):
    account_id = _new(client, host="8.8.8.8")
    # Behind a public outbound proxy the PBX's name only appears in URIs: nothing is sent to it.
    behind = {**SIP, "host": "pbx.internal", "outbound_proxy": "8.8.4.4:5070"}
    assert client.post(f"/settings/sip/{account_id}", data=behind).status_code == 302
    assert _accounts(app, admin.id)[0].outbound_proxy == "8.8.4.4:5070"
    production(sip_allow_private=True)  # AUTOCALL_SIP_ALLOW_PRIVATE=1: a PBX on our network
    data = {**SIP, "host": "10.1.2.3", "outbound_proxy": ""}
    assert client.post(f"/settings/sip/{account_id}", data=data).status_code == 302
    assert _accounts(app, admin.id)[0].host == "10.1.2.3"


def test_formats_are_each_accounts_and_show_a_preview(app, client, admin):
    first = _new(client)
    second = _new(client, name="Second trunk", host="pbx2.alpha.example")
    data = {
        "dial_format": "8{number}@{host}",
        "refer_format": "{extension}@{host}:{port}",
        "refer_headers": "Referred-By: <sip:{server}>",
    }
    assert client.post(f"/settings/sip/{second}/formats", data=data).status_code == 302
    one, two = _accounts(app, admin.id)
    assert two.dial_format == "8{number}@{host}"
    assert two.refer_headers == "Referred-By: <sip:{server}>"
    assert one.dial_format == DEFAULT_DIAL_FORMAT  # the other account's stay
    page = client.get(f"/settings/sip/{second}/formats").get_data(as_text=True)
    assert "sip:8" in page and "@pbx2.alpha.example</span>" in page
    assert "sip:101@pbx2.alpha.example:5060" in page
    assert (
        client.get("/settings/formats")
        .headers["Location"]
        .endswith(f"/settings/sip/{first}/formats")
    )


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("dial_format", "+{phone}@{host}", "Unknown macro {phone}"),
        ("dial_format", "+{number@{host}", "is not closed before the next"),
        ("dial_format", "+{number} @{host}", "have no spaces"),
        ("dial_format", "{host}@{port}", "must contain {number}"),
        ("dial_format", "", "The format is empty."),
        ("refer_format", "{number}@{host}", "Unknown macro {number}"),
        ("refer_headers", "Refer-To: x", "sets the Refer-To header itself"),
    ],
)
def test_formats_refuse_broken_syntax_with_a_clear_message(client, admin, field, value, words):
    account_id = _new(client)
    data = {"dial_format": "+{number}@{host}:{port}", "refer_format": "{extension}@{host}"}
    response = client.post(f"/settings/sip/{account_id}/formats", data={**data, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)


def test_live_preview(client, admin):
    account_id = _new(client)
    url = f"/settings/sip/{account_id}/formats/preview"
    answer = client.get(url, query_string={"kind": "dial", "format": "+{number}@{host}"}).get_json()
    assert answer["ok"] is True
    assert answer["text"].startswith("sip:+1") and answer["text"].endswith("@pbx.alpha.example")
    answer = client.get(url, query_string={"kind": "refer", "format": "{ext}@{host}"}).get_json()
    assert answer == {
        "ok": False,
        "text": "Unknown macro {ext}; use one of: {extension}, {host}, {port}, {server}.",
    }
    assert client.get(url, query_string={"kind": "other"}).status_code == 400


def test_company_settings(app, client, admin):
    _new(client)
    response = client.post("/settings/company", data={**COMPANY, "dialing_enabled": "y"})
    assert response.status_code == 302
    tenant = _tenant(app, admin.id)
    assert tenant.time_zone == "Europe/Moscow"
    assert tenant.default_phone_region == "RU"
    assert tenant.dialing_enabled is True
    page = client.get("/settings/company").get_data(as_text=True)
    assert '<option selected value="Europe/Moscow">' in page
    # An unticked box switches off.
    client.post("/settings/company", data=COMPANY)
    assert _tenant(app, admin.id).dialing_enabled is False
    assert client.get("/settings/calling").headers["Location"].endswith("/settings/company")


@pytest.mark.parametrize(
    ("field", "value"),
    [("time_zone", "Mars/Olympus"), ("default_phone_region", "XX")],
)
def test_company_settings_explain_bad_values(app, client, admin, field, value):
    response = client.post("/settings/company", data={**COMPANY, field: value})
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert _tenant(app, admin.id).time_zone == "UTC"


def test_dialing_cannot_be_switched_on_without_a_complete_sip_account(app, client, admin):
    response = client.post("/settings/company", data={**COMPANY, "dialing_enabled": "y"})
    assert response.status_code == 200
    assert "Add a SIP account first" in response.get_data(as_text=True)
    assert _tenant(app, admin.id).dialing_enabled is False
    with app.app_context():  # an account without a PBX (saved by an older page) is not enough
        db.session.add(SipAccount(tenant_id=admin.id, name="Empty"))
        db.session.commit()
    response = client.post("/settings/company", data={**COMPANY, "dialing_enabled": "y"})
    assert "Add a SIP account first" in response.get_data(as_text=True)
    _new(client)
    assert (
        client.post("/settings/company", data={**COMPANY, "dialing_enabled": "y"}).status_code
        == 302
    )
    assert _tenant(app, admin.id).dialing_enabled is True


def test_an_account_a_campaign_uses_is_not_deleted(app, client, admin):
    first = _new(client)
    second = _new(client, name="Second trunk")
    response = client.post(f"/settings/sip/{first}/delete", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "is not deleted: campaigns dial through it (Default)" in page
    assert [a.id for a in _accounts(app, admin.id)] == [first, second]
    response = client.post(f"/settings/sip/{second}/delete")
    assert response.headers["Location"].endswith("/settings/sip")
    assert [a.id for a in _accounts(app, admin.id)] == [first]


def test_each_settings_form_saves_with_only_its_required_fields(app, client, admin):
    """A post that leaves out the optional fields (a script, an old page) is saved as if they
    were empty: the SIP page wrote NULL into the tenant's row, a 500."""
    required = {name: SIP[name] for name in ("name", "host", "port", "transport", "username")}
    account_id = _new(client, **{name: None for name in SIP if name not in required})
    assert client.post(f"/settings/sip/{account_id}", data=required).status_code == 302
    (account,) = _accounts(app, admin.id)
    assert (account.host, account.auth_username, account.outbound_proxy, account.realm) == (
        "pbx.alpha.example",
        "",
        "",
        "",
    )
    formats = {"dial_format": "+{number}@{host}", "refer_format": "{extension}@{host}"}
    assert client.post(f"/settings/sip/{account_id}/formats", data=formats).status_code == 302
    assert _accounts(app, admin.id)[0].refer_headers == ""
    assert client.post("/settings/company", data=COMPANY).status_code == 302
    webhook = {"url": "https://crm.alpha.example/autocall"}
    assert client.post("/settings/webhooks", data=webhook).status_code == 200  # its secret
    assert client.post("/settings/api/tokens", data={"token-name": "CRM"}).status_code == 200
    assert client.post("/settings/api/clients", data={"client-name": "Site"}).status_code == 200


def test_supervisors_read_settings_but_cannot_change_them(app, client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    account_id = _new(client)
    auth.logout()
    auth.login(tenant_a.supervisor_email)
    pages = (
        "/settings/sip",
        f"/settings/sip/{account_id}",
        f"/settings/sip/{account_id}/formats",
        "/settings/company",
    )
    for page in pages:
        text = client.get(page).get_data(as_text=True)
        assert "only an admin can change them" in text
        assert 'type="submit">Save' not in text and "Delete the SIP account" not in text
        assert client.post(page, data={**SIP, **COMPANY, "host": "x.example"}).status_code in (
            403,
            405,
        )
    assert "New SIP account" not in client.get("/settings/sip").get_data(as_text=True)
    assert client.get("/settings/sip/new").status_code == 403
    assert client.post(f"/settings/sip/{account_id}/delete").status_code == 403
    assert _accounts(app, tenant_a.id)[0].host == "pbx.alpha.example"


def test_every_settings_save_wakes_the_engine(app, client, admin):
    from tests.webapp.jobs import Wakes

    wakes = Wakes(admin.id)
    account_id = _new(client)
    client.post(f"/settings/sip/{account_id}", data=SIP)
    client.post(
        f"/settings/sip/{account_id}/formats",
        data={"dial_format": "+{number}@{host}", "refer_format": "{extension}@{host}"},
    )
    client.post("/settings/company", data=COMPANY)
    client.post("/settings/company", data={**COMPANY, "time_zone": "x"})  # refused: no wake
    second = _new(client, name="Spare")
    client.post(f"/settings/sip/{second}/delete")
    assert wakes.types() == ["settings"] * 6
    wakes.close()


def test_the_sip_page_says_how_each_accounts_pbx_answers(app, client, admin):
    """The engine's word on each account (registration, the keep-alive's OPTIONS) is shown
    beside it, in the reader's language."""

    answering, silent, refused = (
        _new(client, name="A"),
        _new(client, name="B"),
        _new(client, name="C"),
    )
    now = time.time()
    state = {
        "state": "waiting",
        "reason": "no_due_leads",
        "accounts": {
            str(answering): {
                "registration": "registered",
                "detail": "registered",
                "answer_ms": 3.4,
                "answered_at": now - 12,
                "status": 200,
                "silent_since": None,
            },
            str(silent): {
                "registration": "registering",
                "detail": "registered",
                "answer_ms": 3.0,
                "answered_at": now - 90,
                "status": 200,
                "silent_since": now - 45,
            },
            str(refused): {"registration": "failed", "detail": "wrong username or password"},
        },
    }
    with app.app_context():
        key = bus.keys(admin.id).state
        bus.client().hset(key, mapping={k: json.dumps(v) for k, v in state.items()})
    try:

        def status(account_id: int) -> str:
            page = client.get("/settings/sip").get_data(as_text=True)
            row = re.search(rf'data-sip-account="{account_id}".*?</tr>', page, re.S).group(0)
            cell = re.search(r'class="account-status">(.*?)</td>', row, re.S).group(1)
            return re.sub(r"\d+ s ago", "N s ago", re.sub(r"for \d+ s", "for N s", cell.strip()))

        assert status(answering) == "Registered. The PBX answered OPTIONS in 3.4 ms, N s ago."
        assert status(silent) == ("The PBX has not answered for N s; dialing waits until it does.")
        assert status(refused) == "Registration failed: wrong username or password"
        client.get("/lang/ru")
        assert "АТС ответила на OPTIONS за 3,4 мс" in status(answering)
    finally:
        with app.app_context():
            bus.client().delete(key)


def test_tls_with_the_tenants_ca_pasted_or_uploaded(app, client, admin):
    """TCP and TLS are real choices; a TLS account left at 5060 gets 5061; the CA bundle can
    be pasted or uploaded (the upload wins) and is what the engine gets; sips: is asked for."""
    import io

    from tests.kamailio import make_ca
    from webapp.services.sip_accounts import engine_account

    ca, other = make_ca(), make_ca("Other CA")
    account_id = _new(client, transport="tls", tls_ca_pem=ca.cert_pem, use_sips="y")
    (account,) = _accounts(app, admin.id)
    assert (account.transport, account.port, account.use_sips) == ("tls", 5061, True)
    assert account.tls_ca_pem.strip() == ca.cert_pem.strip()
    upload = {**SIP, "transport": "tls", "port": "5061", "tls_ca_pem": ca.cert_pem}
    upload["tls_ca_file"] = (io.BytesIO(other.cert_pem.encode()), "ca.pem")
    response = client.post(
        f"/settings/sip/{account_id}", data=upload, content_type="multipart/form-data"
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    (account,) = _accounts(app, admin.id)
    assert account.tls_ca_pem.strip() == other.cert_pem.strip()
    assert account.use_sips is False  # left out of the post: unchecked
    engine = engine_account(account, app.extensions["autocall.secrets"])  # what checks use
    assert (engine.transport, engine.port, engine.use_sips) == ("tls", 5061, False)
    assert engine.tls_ca_pem.strip() == other.cert_pem.strip()
    page = client.get(f"/settings/sip/{account_id}").get_data(as_text=True)
    assert "(later)" not in page and 'value="tcp"' in page and "Use sips: URIs" in page
    assert 'enctype="multipart/form-data"' in page


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"transport": "tls", "tls_ca_pem": "hello"}, "not a certificate in PEM format"),
        (
            {
                "transport": "tls",
                "tls_ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            },
            "cannot be read",
        ),
        (
            {"transport": "tls", "tls_ca_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n"},
            "contains a private key",
        ),
        ({"transport": "tcp", "use_sips": "y"}, "sips: URIs need TLS"),
    ],
)
def test_a_ca_bundle_that_is_not_certificates_is_refused_in_words(client, admin, changes, words):
    response = client.post("/settings/sip/new", data={**SIP, **changes})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    russian = client.post(
        "/settings/sip/new", data={**SIP, **changes}, headers={"Accept-Language": "ru"}
    )
    assert words not in russian.get_data(as_text=True)  # said in Russian


def test_the_admins_own_break_reasons_are_offered_to_operators_as_written(
    app, client, auth, admin, tenant_a
):
    """One a line, blanks and repeats dropped; a default's name (in either language) is
    refused, since it is offered already."""
    for language, taken, refusal in (
        ("en", "Lunch", "Lunch is offered already"),
        ("ru", "обед", "«обед» уже есть в списке"),
        ("en", "end of shift", "end of shift is offered already"),
    ):
        client.get(f"/lang/{language}")
        response = client.post(
            "/settings/company", data={**COMPANY, "break_reasons": f"Coaching\n{taken}"}
        )
        assert response.status_code == 200 and refusal in response.get_data(as_text=True)
        assert _tenant(app, admin.id).break_reasons == ""
    page = client.post("/settings/company", data={**COMPANY, "break_reasons": "x" * 65})
    assert "at most 64 characters" in page.get_data(as_text=True)
    response = client.post(
        "/settings/company",
        data={**COMPANY, "break_reasons": "  Coaching \n\nDoctor  visit\ncoaching\n"},
    )
    assert response.status_code == 302
    assert _tenant(app, admin.id).break_reasons == "Coaching\nDoctor visit"
    auth.logout()
    auth.login(tenant_a.operator_email)
    client.get("/lang/ru")
    page = client.get("/console/").get_data(as_text=True)
    offered = re.findall(r'<option value="([^"]+)">([^<]+)</option>', page)
    assert offered == [
        ("lunch", "Обед"),
        ("training", "Обучение"),
        ("meeting", "Совещание"),
        ("Coaching", "Coaching"),
        ("Doctor visit", "Doctor visit"),
        ("end_of_shift", "Конец смены"),
    ]
    client.post("/console/on-line")
    answer = client.post(
        "/console/off-line", data={"reason": "Doctor visit"}, headers={"Accept": "application/json"}
    ).get_json()
    assert answer["label"] == "Не на линии · Doctor visit"
