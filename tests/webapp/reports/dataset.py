"""A small fixed set of attempts whose report figures are worked out by hand (in the tests).

The tenant's zone is Europe/Berlin and the days are Saturday 24 and Sunday 25 October 2026:
summer time ends on the Sunday at 03:00 CEST (01:00 UTC), so Sunday has 25 hours and local
02:30 happens twice (A4 at 00:30 UTC and A5 at 01:30 UTC). A3, at 22:30 UTC on Saturday,
is already Sunday 00:30 in Berlin.

| attempt | UTC | Berlin | lead | operator | what |
| --- | --- | --- | --- | --- | --- |
| A1 | 24 08:00 | Sat 10:00 | L1 | | no answer (rang 30 s) |
| A2 | 24 08:30 | Sat 10:30 | L2 | O1 | answered, rang 5 s, transferred, talk 120 s, wrap 20 s |
| A3 | 24 22:30 | Sun 00:30 | L3 | | no free operator (answered, rang 3 s) |
| A4 | 25 00:30 | Sun 02:30 CEST | L1 | | busy 486 |
| A5 | 25 01:30 | Sun 02:30 CET | L4 | O2 | answered, rang 10 s, transferred, talk 5 s (short) |
| A6 | 25 09:15 | Sun 10:15 | L3 | O1 | REFER refused 405 (answered, rang 2 s); L3 exhausted |
| A7 | 25 10:00 | Sun 11:00 | L5 | | unavailable 404 |
| A8 | 25 11:00 | Sun 12:00 | L5 | O2 | transfer failed 480 (answered, rang 4 s) |
| A9 | 25 12:00 | Sun 13:00 | L6 | | in progress |
| A10 | 25 12:30 | Sun 13:30 | L2 | O1 | answered again (a call back), rang 2 s, talk 60 s |

Wrap-up: Finish 20 s after A2's talk, at once after A5's (wrap 0), never after A10's.

Campaigns: L3, L4 and L5 are in the campaign "TV offer" (A3, A5, A6, A7, A8: O1 has a call
in both), the others in the default campaign (A1, A2, A4, A9, A10).

Sessions: O1 on line 24 21:00-23:00 UTC and 25 08:00-12:00 UTC; O2 from 25 01:00 UTC, still on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, OperatorSession, Team, Tenant
from webapp.services.accounts import create_operator


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


@dataclass
class Data:
    tenant_id: int
    o1: int
    o2: int
    team: int
    leads: dict[str, int]
    attempts: dict[str, int]
    default_campaign: int
    tv: int  # the campaign "TV offer" of L3, L4 and L5


#: The leads of the campaign "TV offer".
TV_LEADS = ("L3", "L4", "L5")


def build(app, tenant_id: int, suffix: str = "") -> Data:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        tenant.time_zone = "Europe/Berlin"
        team = Team(tenant_id=tenant_id, name="Оператор team" + suffix)
        db.session.add(team)
        db.session.flush()
        o1 = create_operator(
            tenant,
            name="Ирина Петрова" + suffix,
            email=f"o1{suffix}@r.example",
            extension="201",
            password="x" * 12,
            team_id=team.id,
        )
        o2 = create_operator(
            tenant,
            name="Oleg" + suffix,
            email=f"o2{suffix}@r.example",
            extension="202",
            password="x" * 12,
            team_id=None,
        )
        statuses = {
            "L1": "retry",
            "L2": "reached",
            "L3": "exhausted",
            "L4": "reached",
            "L5": "retry",
            "L6": "dialing",
        }
        default = db.session.scalars(
            db.select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.is_default)
        ).one()
        tv = Campaign(tenant_id=tenant_id, name="TV offer" + suffix, key="tv-dataset")
        db.session.add(tv)
        db.session.flush()
        leads = {}
        for index, (key, status) in enumerate(statuses.items()):
            lead = Lead(
                tenant_id=tenant_id,
                phone=f"+1555020{tenant_id % 10}{index:03d}",
                name=f"Клиент {key}{suffix}",
                status=status,
                campaign_id=tv.id if key in TV_LEADS else default,
            )
            db.session.add(lead)
            db.session.flush()
            leads[key] = lead.id

        def attempt(
            key,
            start,
            lead,
            outcome,
            *,
            detail=None,
            operator=None,
            ring=None,
            answer=None,
            code=None,
            transfer=None,
            tcode=None,
            talk=None,
            wrap=None,
            end=1.0,
        ):
            row = Attempt(
                tenant_id=tenant_id,
                lead_id=leads[lead],
                dialed_uri="sip:x@pbx",
                invite_at=start,
                outcome=outcome,
                detail=detail,
                sip_code=code,
                operator_id={"O1": o1.id, "O2": o2.id}.get(operator),
            )
            s = timedelta(seconds=1)
            if ring is not None:
                row.ringing_at = start + s
                if answer is None:
                    row.end_at = start + s + ring * s
            if answer is not None:
                row.answer_at = start + s + (ring or 0) * s
                row.sip_code, row.sip_reason = 200, "OK"
            if transfer is not None:
                row.refer_at = row.answer_at
                row.refer_to = "sip:201@pbx"
                row.transfer_result = transfer
                row.transfer_result_at = row.answer_at + s
                row.transfer_sip_code = tcode
                if talk is not None:
                    row.talk_ended_at = row.transfer_result_at + talk * s
                if wrap is not None:  # Finish, `wrap` seconds after "The call is over"
                    row.wrap_up_ended_at = row.talk_ended_at + wrap * s
            if outcome is not None and row.end_at is None:
                row.end_at = (row.answer_at or start) + end * s
            db.session.add(row)
            db.session.flush()
            return row.id

        ids = {
            "A1": attempt(
                "A1", at(24, 8), "L1", "no_answer", detail="ring_timeout", ring=30, code=487
            ),
            "A2": attempt(
                "A2",
                at(24, 8, 30),
                "L2",
                "answered",
                operator="O1",
                ring=5,
                answer=True,
                transfer="succeeded",
                tcode=200,
                talk=120,
                wrap=20,
            ),
            "A3": attempt(
                "A3",
                at(24, 22, 30),
                "L3",
                "technical_error",
                detail="no_free_operator",
                ring=3,
                answer=True,
            ),
            "A4": attempt("A4", at(25, 0, 30), "L1", "busy", code=486),
            "A5": attempt(
                "A5",
                at(25, 1, 30),
                "L4",
                "answered",
                operator="O2",
                ring=10,
                answer=True,
                transfer="succeeded",
                tcode=200,
                talk=5,
                wrap=0,  # straight to Finish: no wrap-up
            ),
            "A6": attempt(
                "A6",
                at(25, 9, 15),
                "L3",
                "technical_error",
                detail="refer_refused",
                operator="O1",
                ring=2,
                answer=True,
                transfer="failed",
                tcode=405,
            ),
            "A7": attempt("A7", at(25, 10), "L5", "unavailable", code=404),
            "A8": attempt(
                "A8",
                at(25, 11),
                "L5",
                "technical_error",
                detail="transfer_failed",
                operator="O2",
                ring=4,
                answer=True,
                transfer="failed",
                tcode=480,
            ),
            "A9": attempt("A9", at(25, 12), "L6", None),
            "A10": attempt(
                "A10",
                at(25, 12, 30),
                "L2",
                "answered",
                operator="O1",
                ring=2,
                answer=True,
                transfer="succeeded",
                tcode=200,
                talk=60,
            ),
        }
        db.session.add_all(
            [
                OperatorSession(
                    tenant_id=tenant_id,
                    operator_id=o1.id,
                    on_line_at=at(24, 21),
                    off_line_at=at(24, 23),
                    off_line_why="console",
                ),
                OperatorSession(
                    tenant_id=tenant_id,
                    operator_id=o1.id,
                    on_line_at=at(25, 8),
                    off_line_at=at(25, 12),
                    off_line_why="heartbeat",
                ),
                OperatorSession(tenant_id=tenant_id, operator_id=o2.id, on_line_at=at(25, 1)),
            ]
        )
        db.session.commit()
        return Data(tenant_id, o1.id, o2.id, team.id, leads, ids, default, tv.id)
