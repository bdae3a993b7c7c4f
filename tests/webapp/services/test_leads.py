"""The one way leads come in: numbers normalised, time zones found, the do-not-call list."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import Tenant
from webapp.services.leads import (
    LeadError,
    NewLead,
    add_do_not_call,
    create_lead,
    normalize_phone,
    parse_do_not_call,
)


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("+7 916 123-45-67", "US", "+79161234567"),
        ("8 (916) 123-45-67", "RU", "+79161234567"),
        ("(212) 555-1234", "US", "+12125551234"),
        ("  +44 20 7946 0000 ", "RU", "+442079460000"),
    ],
)
def test_numbers_are_stored_in_e164(text, region, e164):
    assert normalize_phone(text, region) == e164


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("call me", "not a phone number"), ("+1 555", "wrong length")],
)
def test_a_bad_number_is_refused_in_plain_words(text, words):
    with pytest.raises(LeadError) as error:
        normalize_phone(text, "US")
    assert error.value.field == "phone" and words in error.value.message


def test_a_lead_gets_its_time_zone_from_its_number_and_is_idempotent_on_the_crm_id(app):
    with app.app_context():
        tenant = Tenant(name="Acme", default_phone_region="RU")
        db.session.add(tenant)
        db.session.commit()
        lead, created = create_lead(tenant, NewLead(phone="+1 212 555 1234", external_id="c-1"))
        assert created and lead.time_zone == "America/New_York" and lead.status == "new"
        again, created = create_lead(tenant, NewLead(phone="+1 212 555 9999", external_id="c-1"))
        assert not created and again.id == lead.id
        russian, _ = create_lead(tenant, NewLead(phone="89161234567"))
        assert russian.phone == "+79161234567" and russian.time_zone is None  # many zones
        with pytest.raises(LeadError) as error:
            create_lead(tenant, NewLead(phone="+12125551234", time_zone="Mars/Olympus"))
        assert error.value.field == "time_zone"


def test_do_not_call_entries_are_numbers_or_prefixes(app):
    with app.app_context():
        tenant = Tenant(name="Acme", default_phone_region="RU")
        db.session.add(tenant)
        db.session.commit()
        assert parse_do_not_call(tenant, "8 916 123 45 67") == ("+79161234567", False)
        assert parse_do_not_call(tenant, "+7 916*") == ("+7916", True)
        with pytest.raises(LeadError):
            parse_do_not_call(tenant, "916*")
        first = add_do_not_call(tenant, "+7916*", note="a region we may not call")
        assert add_do_not_call(tenant, "+7 916 *").id == first.id  # no duplicate
        assert first.matches("+79161234567") and not first.matches("+79261234567")
