from engine.formats import FormatError
from webapp.models import SipAccount
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


def test_preview_uses_the_accounts_pbx_and_the_tenants_region(app):
    account = SipAccount(name="x", host="10.0.0.5", port=5080)
    with app.test_request_context():
        ok, text = preview("refer", "{extension}@{host}:{port}", account, "US")
        assert (ok, text) == (True, "sip:101@10.0.0.5:5080")
        ok, text = preview("headers", "X-Op: {extension}", account, "US")
        assert (ok, text) == (True, "X-Op: 101")
        ok, text = preview("dial", "+{number}@{host}", account, "RU")
        assert ok and text.startswith("sip:+7") and text.endswith("@10.0.0.5")
