"""The role matrix: every route of the portal, every role, the expected answer.

The table below must name every endpoint; a new view fails this test until its rule is
written down here.
"""

import re

import pytest

from tests.webapp.objects import add_portal_objects
from tests.webapp.reports.objects import add_report_objects

A, S, OP, ST = "admin", "supervisor", "operator", "staff"

#: endpoint -> (roles that may GET, roles that may POST); None: the method does not exist.
RULES = {
    "settings.index": ({A, S}, None),
    "settings.sip": ({A, S}, None),
    "settings.new_sip_account": ({A}, {A}),
    "settings.sip_account": ({A, S}, {A}),
    "settings.delete_sip_account": (None, {A}),
    "settings.formats": ({A, S}, None),
    "settings.sip_account_formats": ({A, S}, {A}),
    "settings.formats_preview": ({A, S}, None),
    "settings.company": ({A, S}, {A}),
    "settings.calling": ({A, S}, None),
    "settings.api_access_page": ({A, S}, None),
    "settings.new_api_token": (None, {A}),
    "settings.revoke_api_token": (None, {A}),
    "settings.new_api_client": (None, {A}),
    "settings.delete_api_client": (None, {A}),
    "settings.webhooks_page": ({A, S}, None),
    "settings.new_webhook": (None, {A}),
    "settings.edit_webhook": ({A, S}, {A}),
    "settings.delete_webhook": (None, {A}),
    "settings.test_webhook": (None, {A}),
    "settings.show_webhook_secret": (None, {A}),
    "operators.index": ({A, S}, None),
    "operators.new": ({A}, {A}),
    "operators.edit": ({A, S}, {A}),
    "operators.deactivate": (None, {A}),
    "operators.activate": (None, {A}),
    "operators.new_team": ({A}, {A}),
    "operators.edit_team": ({A, S}, {A}),
    "operators.delete_team": (None, {A}),
    "people.index": ({A, S}, None),
    "people.new": ({A}, {A}),
    "people.deactivate": (None, {A}),
    "people.activate": (None, {A}),
    "campaigns.index": ({A, S}, None),
    "campaigns.new": ({A}, {A}),
    "campaigns.edit": ({A, S}, {A}),
    "campaigns.calling": ({A, S}, {A}),
    "campaigns.duplicate": (None, {A}),
    "campaigns.run": (None, {A}),
    "campaigns.pause": (None, {A}),
    "campaigns.archive": (None, {A}),
    "campaigns.members": ({A, S}, {A}),
    "campaigns.member_weight": (None, {A}),
    "campaigns.member_remove": (None, {A}),
    "leads.index": ({A, S}, None),
    "leads.detail": ({A, S}, None),
    "leads.import_upload": ({A}, {A}),
    "leads.import_mapping": ({A}, {A}),
    "leads.import_job": ({A}, None),
    "leads.import_status": ({A}, None),
    "donotcall.index": ({A, S}, None),
    "donotcall.add": (None, {A}),
    "donotcall.bulk": (None, {A}),
    "donotcall.delete": (None, {A}),
    "settings.test_connection": (None, {A}),
    "settings.test_call": (None, {A}),
    "settings.check_status": ({A, S}, None),
    "console.index": ({OP}, None),
    "live.index": ({A, S}, None),
    "live.state": ({A, S}, None),
    "live.take_off_line": (None, {A, S}),
    "console.state": ({OP}, None),
    "console.card": ({OP}, None),
    "console.events": ({OP}, None),
    "console.on_line": (None, {OP}),
    "console.off_line": (None, {OP}),
    "console.heartbeat": (None, {OP}),
    "console.finish": (None, {OP}),
    "console.wrap_up": (None, {OP}),
    "console.callbacks": ({OP}, None),
    "console.preview": (None, {OP}),
    "staff.index": ({ST}, None),
    "staff.billing": ({ST}, None),
    "staff.billing_csv": ({ST}, None),
    "staff.billing_tenant": ({ST}, None),
    "staff.ops": ({ST}, None),
    "reports.summary": ({A, S}, None),
    "reports.calls": ({A, S}, None),
    "reports.calls_csv": ({A, S}, None),
    "reports.call": ({A, S}, None),
    "reports.operators": ({A, S}, None),
    "reports.answers": ({A, S}, None),
    "reports.failed_transfers": ({A, S}, None),
    "reports.results": ({A, S}, None),
    "reports.results_csv": ({A, S}, None),
}
#: Open to visitors, or about the visitor's own session; not tenant pages.
PUBLIC = {
    "static",
    "health.healthz",
    "health.readyz",
    "metrics.scrape",  # a bearer token (AUTOCALL_METRICS_TOKEN) or this machine only
    "pages.index",
    "pages.set_language",
    "auth.signup",
    "auth.login",
    "auth.logout",
    "auth.reset_request",
    "auth.reset_password",
    "auth.verify_email",
    "auth.change_password",
    "sso.login",  # single sign-on, on in this module's app
    "sso.callback",
}


#: Endpoints of the console's script, not forms: an empty POST is a bad request (400).
EMPTY_FORM_REFUSED = {"console.preview"}

#: The REST API (webapp/api): bearer tokens only, no session gives access; its own tests
#: (tests/webapp/api/) try every endpoint with each kind of credential and none.
API = {
    "api.new_lead",
    "api.new_leads",
    "api.list_leads",
    "api.get_lead",
    "api.cancel_lead",
    "api.update_lead",
    "api.list_attempts",
    "api.list_do_not_call",
    "api.add_to_do_not_call",
    "api.remove_from_do_not_call",
}
#: Open to anyone: the API's document and its OAuth token endpoint.
API_PUBLIC = {"api.openapi", "api.oauth_token"}


def _url(rule, tenant):
    job = "check_id" if rule.rule.startswith("/settings/") else "import_job_id"
    attributes = {"user_id": "supervisor_id", "job_id": job, "tenant_id": "id"}

    def value(match):
        return str(getattr(tenant, attributes.get(match.group(1), match.group(1))))

    return re.sub(r"<(?:\w+:)?(\w+)>", value, rule.rule)


@pytest.fixture
def config_overrides(tmp_path):
    # Single sign-on on, so its pages are in the app (the provider is only read on use).
    return {
        "upload_dir": str(tmp_path / "uploads"),
        "oidc_issuer": "https://id.example.com",
        "oidc_client_id": "autocall",
        "oidc_client_secret": "secret",
    }


def test_every_endpoint_has_a_rule(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(RULES) | PUBLIC | API | API_PUBLIC


@pytest.mark.parametrize("role", [A, S, OP, ST])
def test_no_session_opens_the_api(app, client, auth, tenant_a, staff_email, role):
    """Signed in as anyone, even the tenant's admin, the API still asks for a bearer token."""
    emails = {
        A: tenant_a.admin_email,
        S: tenant_a.supervisor_email,
        OP: tenant_a.operator_email,
        ST: staff_email,
    }
    assert auth.login(emails[role]).status_code == 302
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in API:
            continue
        url = rule.rule.replace("<int:lead_id>", str(tenant_a.lead_id))
        url = url.replace("<int:entry_id>", "1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={"phone": "+12125551234"})
            assert response.status_code == 401, (rule.endpoint, method, role)
            assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("role", [A, S, OP, ST, None])
def test_role_matrix(app, client, auth, tenant_a, staff_email, role, request):
    add_portal_objects(app, tenant_a, request)
    add_report_objects(app, tenant_a)
    emails = {
        A: tenant_a.admin_email,
        S: tenant_a.supervisor_email,
        OP: tenant_a.operator_email,
        ST: staff_email,
    }
    if role is not None:
        assert auth.login(emails[role]).status_code == 302
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in RULES:
            continue
        url = _url(rule, tenant_a)
        for method, allowed in zip(("GET", "POST"), RULES[rule.endpoint], strict=True):
            if allowed is None:
                assert method not in rule.methods, (rule.endpoint, method)
                continue
            # POSTs send an empty form: allowed roles get a form error or a redirect.
            query = {"kind": "dial"} if rule.endpoint == "settings.formats_preview" else {}
            response = client.open(url, method=method, data={}, query_string=query)
            status = response.status_code
            where = (rule.endpoint, method, role, status)
            if role is None:
                assert status == 302 and "/login" in response.headers["Location"], where
            elif role in allowed:
                ok = (
                    (200, 204, 302, 400) if rule.endpoint in EMPTY_FORM_REFUSED else (200, 204, 302)
                )
                assert status in ok, where
            else:
                assert status == 403, where
