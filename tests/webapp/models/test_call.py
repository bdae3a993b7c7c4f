from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from engine.outcomes import Detail
from webapp.extensions import db
from webapp.models import Attempt, Lead, Outcome


def _lead(tenant_id):
    lead = Lead(tenant_id=tenant_id, phone="+15550100")
    db.session.add(lead)
    db.session.flush()
    return lead


def test_an_attempt_records_the_call(app, tenant_a):
    with app.app_context():
        lead = _lead(tenant_a.id)
        now = datetime.now(UTC)
        attempt = Attempt(
            tenant_id=tenant_a.id,
            lead_id=lead.id,
            operator_id=None,
            dialed_uri="sip:+15550100@pbx.example.com:5060",
            outcome=Outcome.TECHNICAL_ERROR.value,
            detail=Detail.NO_FREE_OPERATOR,
            sip_code=200,
            sip_reason="OK",
            invite_at=now,
            answer_at=now,
            end_at=now,
        )
        db.session.add(attempt)
        db.session.commit()
        assert db.session.get(Attempt, attempt.id).detail == "no_free_operator"


def test_an_attempt_cannot_point_at_another_tenants_lead_or_operator(app, tenant_a, tenant_b):
    with app.app_context():
        lead_b = _lead(tenant_b.id)
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=lead_b.id,
                dialed_uri="sip:x@y",
                invite_at=datetime.now(UTC),
            )
        )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        lead_a = _lead(tenant_a.id)
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=lead_a.id,
                operator_id=tenant_b.operator_id,
                dialed_uri="sip:x@y",
                invite_at=datetime.now(UTC),
            )
        )
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_outcomes_use_the_products_words():
    assert [o.value for o in Outcome] == [
        "answered",
        "no_answer",
        "busy",
        "unavailable",
        "technical_error",
    ]
