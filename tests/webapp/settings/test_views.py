import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from webapp.extensions import db
from webapp.models import Tenant

SIP = {
    "sip_host": "pbx.alpha.example",
    "sip_port": "5060",
    "sip_transport": "udp",
    "sip_username": "dialer",
    "sip_auth_username": "",
    "sip_password": "",
    "sip_outbound_proxy": "",
    "sip_realm": "",
}

CALLING = {
    "retry_no_answer_minutes": "90",
    "retry_unavailable_minutes": "90",
    "retry_busy_minutes": "5",
    "retry_technical_error_minutes": "10",
    "max_attempts": "5",
    "ring_timeout_seconds": "30",
    "calling_hours_start": "09:00",
    "calling_hours_end": "21:00",
    "time_zone": "Europe/Moscow",
    "default_phone_region": "RU",
    "pacing_mode": "multiplier",
    "call_multiplier": "1.2",
    "abandon_rate_cap_percent": "3",
    "abandon_rate_window_days": "30",
    "max_calls_at_once": "30",
    "max_calls_per_second": "10",
    "wrap_up_timeout_seconds": "600",
    "failed_transfers_limit": "3",
    "results": "Продажа\n  Отказ  \n\nПерезвонить",
}


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _tenant(app, tenant_id) -> Tenant:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        db.session.expunge(tenant)
        return tenant


def test_settings_start_with_the_sip_account(client, admin):
    assert client.get("/settings/").headers["Location"].endswith("/settings/sip")


def test_sip_password_is_encrypted_never_shown_and_never_logged(app, client, admin, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-SIP-pass"
    response = client.post("/settings/sip", data={**SIP, "sip_password": secret})
    assert response.status_code == 302
    tenant = _tenant(app, admin.id)
    assert tenant.sip_host == "pbx.alpha.example"
    assert tenant.sip_password_encrypted and secret not in tenant.sip_password_encrypted
    box = app.extensions["autocall.secrets"]
    assert box.decrypt(tenant.sip_password_encrypted) == secret
    page = client.get("/settings/sip").get_data(as_text=True)
    assert secret not in page
    assert tenant.sip_password_encrypted not in page
    assert "A password is saved." in page
    assert secret not in caplog.text


def test_an_empty_password_field_keeps_the_saved_password(app, client, admin):
    client.post("/settings/sip", data={**SIP, "sip_password": "first"})
    before = _tenant(app, admin.id).sip_password_encrypted
    client.post("/settings/sip", data={**SIP, "sip_port": "5080"})
    tenant = _tenant(app, admin.id)
    assert tenant.sip_port == 5080
    assert tenant.sip_password_encrypted == before


def test_the_saved_password_can_be_removed(app, client, admin):
    client.post("/settings/sip", data={**SIP, "sip_password": "first"})
    client.post("/settings/sip", data={**SIP, "clear_password": "y"})
    assert _tenant(app, admin.id).sip_password_encrypted is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sip_host", "sip:pbx.example.com", "without sip:"),
        ("sip_host", "pbx example", "without sip:"),
        ("sip_port", "70000", "between 1 and 65535"),
        ("sip_username", "dial er", "no spaces"),
        ("sip_outbound_proxy", "sip:proxy", "host or host:port"),
        ("sip_transport", "sctp", "Not a valid choice"),
        ("sip_realm", 'a"b', "cannot contain quotes"),
    ],
)
def test_sip_account_explains_bad_values(client, admin, field, value, words):
    response = client.post("/settings/sip", data={**SIP, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)


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
        ({"sip_host": "127.0.0.1"}, "127.0.0.1"),
        ({"sip_host": "localhost"}, "localhost"),
        ({"sip_host": "10.1.2.3"}, "10.1.2.3"),
        ({"sip_host": "169.254.169.254"}, "169.254.169.254"),  # a cloud's metadata service
        ({"sip_host": "[::1]"}, "::1"),
        ({"sip_host": "8.8.8.8", "sip_outbound_proxy": "192.168.1.1:5070"}, "192.168.1.1"),
    ],
)
def test_production_refuses_a_pbx_in_a_private_network(
    app, client, admin, production, changes, host
):
    response = client.post("/settings/sip", data={**SIP, **changes})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"{host} is " in page and "a private, loopback or link-local address" in page
    assert _tenant(app, admin.id).sip_host == ""  # nothing saved
    russian = client.post(
        "/settings/sip", data={**SIP, **changes}, headers={"Accept-Language": "ru"}
    )
    assert "частный, локальный (loopback) или link-local адрес" in russian.get_data(as_text=True)


def test_production_takes_a_public_pbx_and_a_private_one_when_allowed(
    app, client, admin, production
):
    assert client.post("/settings/sip", data={**SIP, "sip_host": "8.8.8.8"}).status_code == 302
    # Behind a public outbound proxy the PBX's name only appears in URIs: nothing is sent to it.
    behind = {**SIP, "sip_host": "pbx.internal", "sip_outbound_proxy": "8.8.4.4:5070"}
    assert client.post("/settings/sip", data=behind).status_code == 302
    assert _tenant(app, admin.id).sip_outbound_proxy == "8.8.4.4:5070"
    production(sip_allow_private=True)  # AUTOCALL_SIP_ALLOW_PRIVATE=1: a PBX on our network
    data = {**SIP, "sip_host": "10.1.2.3", "sip_outbound_proxy": ""}
    assert client.post("/settings/sip", data=data).status_code == 302
    assert _tenant(app, admin.id).sip_host == "10.1.2.3"


def test_formats_save_and_show_a_preview(app, client, admin):
    client.post("/settings/sip", data=SIP)
    data = {
        "dial_format": "8{number}@{host}",
        "refer_format": "{extension}@{host}:{port}",
        "refer_headers": "Referred-By: <sip:{server}>",
    }
    assert client.post("/settings/formats", data=data).status_code == 302
    tenant = _tenant(app, admin.id)
    assert tenant.dial_format == "8{number}@{host}"
    assert tenant.refer_headers == "Referred-By: <sip:{server}>"
    page = client.get("/settings/formats").get_data(as_text=True)
    assert "sip:8" in page and "@pbx.alpha.example</span>" in page
    assert "sip:101@pbx.alpha.example:5060" in page


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
    data = {"dial_format": "+{number}@{host}:{port}", "refer_format": "{extension}@{host}"}
    response = client.post("/settings/formats", data={**data, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)


def test_live_preview(client, admin):
    answer = client.get(
        "/settings/formats/preview", query_string={"kind": "dial", "format": "+{number}@{host}"}
    ).get_json()
    assert answer["ok"] is True
    assert answer["text"].startswith("sip:+1") and answer["text"].endswith("@pbx.example.com")
    answer = client.get(
        "/settings/formats/preview", query_string={"kind": "refer", "format": "{ext}@{host}"}
    ).get_json()
    assert answer == {
        "ok": False,
        "text": "Unknown macro {ext}; use one of: {extension}, {host}, {port}, {server}.",
    }
    response = client.get("/settings/formats/preview", query_string={"kind": "other"})
    assert response.status_code == 400


def test_calling_settings(app, client, admin):
    client.post("/settings/sip", data=SIP)
    response = client.post(
        "/settings/calling", data={**CALLING, "hide_numbers": "y", "dialing_enabled": "y"}
    )
    assert response.status_code == 302
    tenant = _tenant(app, admin.id)
    assert tenant.call_multiplier == 1.2
    assert tenant.time_zone == "Europe/Moscow"
    assert tenant.default_phone_region == "RU"
    assert tenant.hide_numbers is True and tenant.dialing_enabled is True
    assert tenant.result_choices == ["Продажа", "Отказ", "Перезвонить"]
    page = client.get("/settings/calling").get_data(as_text=True)
    assert 'value="1.20"' in page
    # Unticked boxes switch off.
    client.post("/settings/calling", data=CALLING)
    assert _tenant(app, admin.id).dialing_enabled is False


def test_decimals_may_be_written_with_a_comma(app, client, admin):
    data = {**CALLING, "call_multiplier": "1,35", "abandon_rate_cap_percent": " 2,5 "}
    assert client.post("/settings/calling", data=data).status_code == 302
    tenant = _tenant(app, admin.id)
    assert (tenant.call_multiplier, tenant.abandon_rate_cap_percent) == (1.35, 2.5)


def test_the_regulatory_window_of_the_abandon_rate(app, client, admin):
    assert _tenant(app, admin.id).abandon_rate_window_days == 30  # a new tenant's
    data = {**CALLING, "pacing_mode": "predictive", "abandon_rate_window_days": "1"}
    assert client.post("/settings/calling", data=data).status_code == 302
    tenant = _tenant(app, admin.id)
    assert (tenant.pacing_mode, tenant.abandon_rate_window_days) == ("predictive", 1)
    page = client.get("/settings/calling").get_data(as_text=True)
    assert "the last 24 hours" in page
    ru = client.get("/settings/calling", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "последние 24 часа" in ru and "Доля брошенных считается за" in ru


def test_calling_hours_from_midnight_to_midnight_are_all_day(app, client, admin):
    """What the demo tenant has: the engine dials all day when both times are the same."""
    from datetime import time

    from engine.dialer import calling_window
    from webapp.services.dialing import DialingStore

    data = {**CALLING, "calling_hours_start": "00:00", "calling_hours_end": "00:00"}
    assert client.post("/settings/calling", data=data).status_code == 302
    tenant = _tenant(app, admin.id)
    assert (tenant.calling_hours_start, tenant.calling_hours_end) == (time(0, 0), time(0, 0))
    page = client.get("/settings/calling").get_data(as_text=True)
    assert 'value="00:00"' in page and "00:00 and 00:00: all day" in page
    store = DialingStore(app.config["SQLALCHEMY_DATABASE_URI"], app.extensions["autocall.secrets"])
    try:
        settings = store.settings(admin.id)
    finally:
        store.close()
    window = calling_window(settings, datetime.now(UTC))
    assert (window.tenant_zone_open, window.zones) == (True, None)


def test_each_settings_form_saves_with_only_its_required_fields(app, client, admin):
    """A post that leaves out the optional fields (a script, an old page) is saved as if they
    were empty: the SIP page wrote NULL into the tenant's row, a 500."""
    required = {
        name: SIP[name] for name in ("sip_host", "sip_port", "sip_transport", "sip_username")
    }
    assert client.post("/settings/sip", data=required).status_code == 302
    tenant = _tenant(app, admin.id)
    assert (
        tenant.sip_host,
        tenant.sip_auth_username,
        tenant.sip_outbound_proxy,
        tenant.sip_realm,
    ) == ("pbx.alpha.example", "", "", "")
    formats = {"dial_format": "+{number}@{host}", "refer_format": "{extension}@{host}"}
    assert client.post("/settings/formats", data=formats).status_code == 302
    assert _tenant(app, admin.id).refer_headers == ""
    assert client.post("/settings/calling", data=CALLING).status_code == 302
    webhook = {"url": "https://crm.alpha.example/autocall"}
    assert client.post("/settings/webhooks", data=webhook).status_code == 200  # its secret
    assert client.post("/settings/api/tokens", data={"token-name": "CRM"}).status_code == 200
    assert client.post("/settings/api/clients", data={"client-name": "Site"}).status_code == 200


def test_dialing_cannot_be_switched_on_without_a_sip_account(app, client, admin):
    response = client.post("/settings/calling", data={**CALLING, "dialing_enabled": "y"})
    assert response.status_code == 200
    assert "Enter the SIP account first" in response.get_data(as_text=True)
    assert _tenant(app, admin.id).dialing_enabled is False


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("call_multiplier", "0.5", "between 1 and 5"),
        ("retry_busy_minutes", "0", "between 1 and 10080"),
        ("calling_hours_end", "08:00", "must be after the start"),
        ("time_zone", "Mars/Olympus", "Not a valid choice"),
        ("pacing_mode", "preview", "Not a valid choice"),
        ("abandon_rate_window_days", "7", "Not a valid choice"),
        ("results", " \n ", "from 1 to 30 results"),
        ("results", "x" * 101, "at most 100 characters"),
    ],
)
def test_calling_settings_explain_bad_values(client, admin, field, value, words):
    response = client.post("/settings/calling", data={**CALLING, field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)


def test_supervisors_read_settings_but_cannot_change_them(app, client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    for page in ("/settings/sip", "/settings/formats", "/settings/calling"):
        text = client.get(page).get_data(as_text=True)
        assert "only an admin can change them" in text
        assert 'type="submit">Save' not in text
        assert client.post(page, data={**SIP, **CALLING}).status_code == 403
    assert _tenant(app, tenant_a.id).sip_host == ""


def test_ceilings_wrap_up_and_failed_transfers_are_saved_and_checked(app, client, admin):
    data = {
        **CALLING,
        "max_calls_at_once": "200",
        "max_calls_per_second": "25",
        "wrap_up_timeout_seconds": "0",
        "failed_transfers_limit": "0",
    }
    assert client.post("/settings/calling", data=data).status_code == 302
    tenant = _tenant(app, admin.id)
    assert (tenant.max_calls_at_once, tenant.max_calls_per_second) == (200, 25)
    assert (tenant.wrap_up_timeout_seconds, tenant.failed_transfers_limit) == (0, 0)
    page = client.get("/settings/calling").get_data(as_text=True)
    assert 'value="200"' in page and 'value="25"' in page
    refused = [
        ("max_calls_at_once", "0"),
        ("max_calls_at_once", "1001"),
        ("max_calls_per_second", "501"),
        ("wrap_up_timeout_seconds", "86401"),
        ("failed_transfers_limit", "101"),
        ("failed_transfers_limit", "-1"),
    ]
    for name, bad in refused:
        response = client.post("/settings/calling", data={**CALLING, name: bad})
        assert response.status_code == 200, (name, bad)
    assert _tenant(app, admin.id).max_calls_at_once == 200


def test_every_settings_save_wakes_the_engine(app, client, admin):
    from tests.webapp.jobs import Wakes

    wakes = Wakes(admin.id)
    client.post("/settings/sip", data=SIP)
    client.post(
        "/settings/formats",
        data={"dial_format": "+{number}@{host}", "refer_format": "{extension}@{host}"},
    )
    client.post("/settings/calling", data=CALLING)
    client.post("/settings/calling", data={**CALLING, "max_attempts": "0"})  # refused: no wake
    assert wakes.types() == ["settings"] * 3
    wakes.close()
