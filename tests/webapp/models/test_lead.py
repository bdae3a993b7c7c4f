import pytest
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Lead


def test_lead_defaults(app, tenant_a):
    with app.app_context():
        lead = Lead(tenant_id=tenant_a.id, phone="+79991234567", card={"order": 17})
        db.session.add(lead)
        db.session.commit()
        lead = db.session.get(Lead, lead.id)
        assert lead.status == "new"
        assert lead.attempts == 0
        assert lead.priority == 0
        assert lead.card == {"order": 17}
        assert lead.created_at is not None


def test_external_id_is_unique_per_tenant_only(app, tenant_a, tenant_b):
    with app.app_context():
        db.session.add(Lead(tenant_id=tenant_a.id, phone="+15550100", external_id="crm-1"))
        db.session.add(Lead(tenant_id=tenant_b.id, phone="+15550100", external_id="crm-1"))
        db.session.add(Lead(tenant_id=tenant_a.id, phone="+15550101"))  # no id: never collides
        db.session.add(Lead(tenant_id=tenant_a.id, phone="+15550102"))
        db.session.commit()
        db.session.add(Lead(tenant_id=tenant_a.id, phone="+15550103", external_id="crm-1"))
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_status_and_outcome_are_checked(app, tenant_a):
    with app.app_context():
        db.session.add(Lead(tenant_id=tenant_a.id, phone="+15550100", last_outcome="hung_up"))
        with pytest.raises(IntegrityError):
            db.session.commit()
