from engine.formats import FormatError
from webapp.models import Tenant
from webapp.settings.formats import format_error_message, preview, sample_number


def test_every_engine_error_has_a_translatable_message(app):
    params = {"position": 3, "name": "x", "allowed": "{a}", "char": "<", "value": "v", "line": 2}
    with app.test_request_context():
        for code in FormatError.MESSAGES:
            error = FormatError(code, **params)
            assert format_error_message(error) == error.message, code


def test_sample_numbers_follow_the_tenants_region():
    assert sample_number("RU").startswith("7")
    assert sample_number("GB").startswith("44")
    assert sample_number("ZZ") == "15550100123"


def test_preview_uses_the_tenants_pbx(app):
    tenant = Tenant(name="x", sip_host="10.0.0.5", sip_port=5080, default_phone_region="US")
    with app.test_request_context():
        ok, text = preview("refer", "{extension}@{host}:{port}", tenant)
        assert (ok, text) == (True, "sip:101@10.0.0.5:5080")
        ok, text = preview("headers", "X-Op: {extension}", tenant)
        assert (ok, text) == (True, "X-Op: 101")
