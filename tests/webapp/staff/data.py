"""A small fixed data set for the staff pages, with its numbers computed by hand.

Three tenants: "ООО «Ромашка»" (time zone Europe/Moscow, to show that billing months are
UTC all the same), "Bravo Ltd", and "Zeta", which never called. Times are UTC. Romashka has
a second campaign, «ТВ-реклама» (key `tv`), with two of its October calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.conftest import PASSWORD

ROMASHKA = "ООО «Ромашка»"


def t(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@dataclass
class StaffData:
    romashka: int
    bravo: int
    zeta: int
    romashka_admin: str
    romashka_default: int  # campaign ids
    romashka_tv: int
    bravo_default: int


# (invite_at, picked up after seconds, talked seconds, outcome, detail, sip code, transfer)
ROMASHKA_ATTEMPTS = [
    # October 2026: 5 finished attempts, 4 picked up, 2 transferred, 60+61+0+125 = 246 s,
    # 1+2+0+3 = 6 min (the attempt still in progress counts when it ends)
    (t(2026, 10, 1, 0, 0, 0), 5, 60.0, "answered", None, 200, "succeeded"),  # the first instant
    (t(2026, 10, 15, 12), 3, 61.0, "answered", None, 200, "unconfirmed"),
    (t(2026, 10, 20, 9), 4, 0.4, "technical_error", "no_free_operator", 200, None),
    (t(2026, 10, 10, 9), 2, 125.4, "technical_error", "transfer_failed", 200, "failed"),
    (t(2026, 10, 11, 9), 2, None, None, None, 200, None),  # in progress: not yet counted
    # 02:59:59.999 on 1 November in Moscow, still October in UTC
    (t(2026, 10, 31, 23, 59, 59, 999000), None, None, "busy", None, 486, None),
    # November: 1 attempt, picked up, 30 s, 1 minute
    (t(2026, 11, 1, 0, 0, 0), 1, 30.0, "answered", None, 200, "succeeded"),
    # September: 1 attempt, not picked up
    (t(2026, 9, 30, 23, 59, 59), None, None, "no_answer", "ring_timeout", 487, None),
]
#: Romashka's calls in its campaign «ТВ-реклама»: 61 s and 125.4 s, 2 + 3 = 5 minutes; its
#: default campaign has October's 60 s and 0.4 s: 1 minute.
ROMASHKA_TV = {t(2026, 10, 15, 12), t(2026, 10, 10, 9)}
BRAVO_ATTEMPTS = [
    # October 2026: 2 attempts, 1 picked up, 1 transferred, 59.6 s -> 60 s, 1 minute
    (t(2026, 10, 5, 10), 6, 59.6, "answered", None, 200, "succeeded"),
    (t(2026, 10, 5, 11), None, None, "unavailable", None, 503, None),
]

#: tenant -> (attempts, picked up, transferred, billed seconds, billable minutes)
OCTOBER = {"romashka": (5, 4, 2, 246, 6), "bravo": (2, 1, 1, 60, 1), "zeta": (0, 0, 0, 0, 0)}
OCTOBER_TOTAL = (7, 5, 3, 306, 7)
NOVEMBER_ROMASHKA = (1, 1, 1, 30, 1)
#: Billable minutes by campaign in October: Romashka's default and «ТВ-реклама», Bravo's.
OCTOBER_BY_CAMPAIGN = {"romashka": (1, 5), "bravo": 1}
SEPTEMBER_ROMASHKA = (1, 0, 0, 0, 0)


def load(app) -> StaffData:
    """Write the data set (as trusted code, outside requests)."""
    from webapp.extensions import db
    from webapp.models import Attempt, Campaign, Lead
    from webapp.services.accounts import create_tenant_with_admin

    ids = {}
    with app.app_context():
        for key, name, rows in (
            ("romashka", ROMASHKA, ROMASHKA_ATTEMPTS),
            ("bravo", "Bravo Ltd", BRAVO_ATTEMPTS),
            ("zeta", "Zeta", []),
        ):
            admin = create_tenant_with_admin(name, f"admin@{key}.example", PASSWORD)
            tenant = admin.tenant
            if key == "romashka":
                tenant.time_zone = "Europe/Moscow"
            lead = Lead(tenant_id=tenant.id, phone="+79160000001", name="Иван")
            db.session.add(lead)
            db.session.flush()
            ids[f"{key}_default"] = lead.campaign_id
            if key == "romashka":
                tv = Campaign(tenant_id=tenant.id, name="ТВ-реклама", key="tv")
                db.session.add(tv)
                db.session.flush()
                ids["romashka_tv"] = tv.id
            for invite_at, after, talked, outcome, detail, code, transfer in rows:
                answer_at = invite_at + timedelta(seconds=after) if after is not None else None
                end_at = None
                if answer_at is not None and talked is not None:
                    end_at = answer_at + timedelta(seconds=talked)
                elif answer_at is None and outcome is not None:
                    end_at = invite_at + timedelta(seconds=20)
                db.session.add(
                    Attempt(
                        tenant_id=tenant.id,
                        lead_id=lead.id,
                        dialed_uri="sip:79160000001@pbx",
                        outcome=outcome,
                        detail=detail,
                        sip_code=code,
                        invite_at=invite_at,
                        answer_at=answer_at,
                        end_at=end_at,
                        transfer_result=transfer,
                        campaign_id=ids["romashka_tv"]
                        if key == "romashka" and invite_at in ROMASHKA_TV
                        else None,  # None: the lead's
                    )
                )
            db.session.commit()
            ids[key] = tenant.id
    return StaffData(
        ids["romashka"],
        ids["bravo"],
        ids["zeta"],
        "admin@romashka.example",
        ids["romashka_default"],
        ids["romashka_tv"],
        ids["bravo_default"],
    )
