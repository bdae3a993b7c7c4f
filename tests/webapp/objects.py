"""Objects of the pages that take more than the fixture's tenant has: a SIP account (every
campaign dials through it), a second campaign with the tenant's operator in it (a campaign
member; not the team, which the matrices delete), a do-not-call entry, an uploaded CSV file,
a lead import and a connection check of the account (queued, never run). The role and
cross-tenant matrices give one of each to a tenant; jobs are deleted
afterwards."""

from __future__ import annotations

import io

from rq.job import Job

from webapp.extensions import db
from webapp.models import DoNotCall, Tenant
from webapp.services.campaigns import add_member, create_campaign
from webapp.services.sip_accounts import Password, create_account


def add_portal_objects(app, tenant, request) -> None:
    from webapp import bus
    from webapp.jobs import watched
    from webapp.leads import imports
    from webapp.settings import checks

    with app.app_context():
        company = db.session.get(Tenant, tenant.id)
        account = create_account(
            company,
            {"name": f"{company.name} PBX", "host": f"pbx.{tenant.id}.example", "username": "u"},
            Password(new="pbx-password"),
            app.extensions["autocall.secrets"],
        )
        tenant.account_id = account.id
        campaign = create_campaign(company, f"{company.name} TV", "tv-offer", None)
        tenant.campaign_id = campaign.id
        tenant.member_id = add_member(campaign, operator_id=tenant.operator_id, weight=5).id
        entry = DoNotCall(tenant_id=tenant.id, number=f"+1212555{tenant.id:04d}", note="note")
        db.session.add(entry)
        db.session.commit()
        tenant.entry_id = entry.id
        upload = imports.save_upload(tenant.id, "leads.csv", io.BytesIO(b"phone\n+12125550100\n"))
        tenant.upload_id = upload.token
        started = [
            watched.start(
                "import",
                tenant.id,
                imports.import_leads,
                tenant.id,
                upload.token,
                ["phone"],
                True,
                timeout=60,
            ),
            watched.start(
                checks.KIND,
                tenant.id,
                checks.check_connection,
                tenant.id,
                account.id,
                timeout=60,
            ),
        ]
        tenant.import_job_id, tenant.check_id = (job.id for job in started)
        connection = bus.client()

    def delete_jobs() -> None:
        for job in started:
            Job.fetch(job.id, connection=connection).delete()

    request.addfinalizer(delete_jobs)
