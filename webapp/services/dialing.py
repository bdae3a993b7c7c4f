"""The engine's database work (engine/store.py `Store`): settings, claims, CDRs, recovery.

It runs in an engine host's database thread with a plain SQLAlchemy engine (no Flask app
context), on the models' tables. Each method is one short transaction:

Every claim and every write of attempts is fenced: it carries the engine's fencing token
(`epoch`, from `start_engine`) and first reads the tenant's row `FOR SHARE`; a token that is
no longer the tenant's newest raises `Refused("fenced")`, and nothing is written. Because
`start_engine` updates that row, a claim either commits before a newer engine starts (whose
`recover` then sees its attempts) or sees the newer token: a stale engine can never open an
attempt behind its successor's back. The same read refuses a claim once dialing is off.

- `claim` marks due leads `dialing` and opens their attempts in the same transaction: due
  callbacks first (whatever their attempts; a personal one while its operator is free, until
  its campaign's grace period), then by the campaign's lead order (docs/engine.md,
  "Callbacks"). On
  PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so two engines
  racing for one tenant never get the same lead; on SQLite the transaction starts with
  `BEGIN IMMEDIATE`, which serialises writers. The do-not-call list is checked here, at
  claim time, in the same transaction: a lead whose number is on it becomes `do_not_call`.
- `finish` writes CDRs and leads' next steps; an attempt another engine already closed
  (after taking the tenant over) is left alone: the write is fenced by `outcome IS NULL`.
  The same transaction records the webhook deliveries of the batch (an outbox); one job
  then tries them (webapp/webhooks).
- `correct_transfer` writes a transfer's result that came after the engine's wait over the
  attempt written as timed out: a success makes it `answered` and its lead `reached` (if the
  lead is still where the attempt left it), and the webhooks hear of the attempt again.
- `recover` closes the attempts left open by an engine that is gone (`engine_lost`) and
  reschedules their leads no sooner than that engine's calls could still be going; a lead
  whose customer was being handed to an operator is `reached` (transfer `unconfirmed`), not
  called again.
- `abandon_counts` reads a campaign's measured abandon rate for predictive pacing over its
  regulatory window: whole hours already rolled up from `report_hours`, the rest raw.

On PostgreSQL every transaction first names its tenant (`autocall.tenant_id`), so the
row-level security of leads, attempts and the do-not-call list applies to the engine too.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Queue
from sqlalchemy import (
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine

from engine.outcomes import ABANDONED, Detail, Outcome, TransferResult
from engine.sip.ua import Account
from engine.store import (
    AccountSettings,
    CampaignSettings,
    Claimed,
    Finished,
    Lost,
    PutBack,
    Refused,
    TenantSettings,
    Window,
)
from webapp.models import (
    Attempt,
    Campaign,
    CampaignMember,
    CampaignState,
    DoNotCall,
    Lead,
    LeadStatus,
    Operator,
    ReportHour,
    ReportRollup,
    SipAccount,
    Tenant,
)
from webapp.services.figures import ceil_hour
from webapp.services.secrets import SecretBox, SecretError
from webapp.services.sip_accounts import outbound_proxy
from webapp.services.webhooks import announce, record_finished

leads = Lead.__table__
attempts = Attempt.__table__
tenants = Tenant.__table__
do_not_call = DoNotCall.__table__
report_hours = ReportHour.__table__
report_rollups = ReportRollup.__table__
campaigns = Campaign.__table__
campaign_members = CampaignMember.__table__
operators = Operator.__table__
sip_accounts = SipAccount.__table__
DIALABLE = (LeadStatus.NEW.value, LeadStatus.RETRY.value)
#: A campaign's window and order as the claim's statement is built for them (`_shape`).
Shape = tuple[bool, bool, str]


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _campaign_settings(row, weights: dict[int, int] | None) -> CampaignSettings:
    """A campaign's row as the engine takes it."""
    return CampaignSettings(
        campaign_id=row["id"],
        weights=weights,
        account_id=row["sip_account_id"],
        ring_timeout=float(row["ring_timeout_seconds"]),
        retry_minutes={
            outcome.value: row[f"retry_{outcome.value}_minutes"]
            for outcome in Outcome
            if outcome != Outcome.ANSWERED
        },
        max_attempts=row["max_attempts"],
        lead_order=row["lead_order"],
        callback_grace_minutes=row["callback_grace_minutes"],
        calling_hours=(row["calling_hours_start"], row["calling_hours_end"]),
        weekdays=frozenset(int(day) for day in row["calling_weekdays"]),
        start_date=row["start_date"],
        end_date=row["end_date"],
        pacing_mode=row["pacing_mode"],
        multiplier=row["call_multiplier"],
        max_calls_at_once=row["max_calls_at_once"],
        max_calls_per_second=row["max_calls_per_second"],
        abandon_rate_cap=float(row["abandon_rate_cap_percent"]),
        abandon_rate_window_days=row["abandon_rate_window_days"],
        abandon_tolerance=float(row["abandon_tolerance_seconds"]),
        fallback=row["fallback_target"] or "",
        wrap_up_timeout=float(row["wrap_up_timeout_seconds"]),
        failed_transfers_limit=row["failed_transfers_limit"],
        preview_countdown=float(row["preview_countdown_seconds"]),
    )


class DialingStore:
    def __init__(self, database_url: str, secrets: SecretBox, queue: Queue | None = None):
        """`queue`: the `webhooks` queue, for deliveries after `finish`; None sends none."""
        self.secrets = secrets
        self.queue = queue
        self.sqlite = database_url.startswith("sqlite")
        #: The claim's statements, by the shapes of their campaigns' windows (`claim`).
        self._claim_statements: dict[tuple[Shape, ...], Any] = {}
        if self.sqlite:
            self.db: Engine = create_engine(database_url, connect_args={"timeout": 30})
            event.listen(self.db, "connect", _sqlite_connect)
            event.listen(self.db, "begin", _sqlite_begin_immediate)
        else:
            self.db = create_engine(database_url, pool_pre_ping=True, pool_size=2)

    def close(self) -> None:
        self.db.dispose()
        if self.queue is not None:
            self.queue.connection.close()

    def _begin(self, tenant_id: int | str):
        connection = self.db.connect()
        transaction = connection.begin()
        if not self.sqlite:
            connection.execute(
                text("SELECT set_config('autocall.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
        return _Unit(connection, transaction)

    # --- fencing ----------------------------------------------------------------------------

    def start_engine(self, tenant_id: int) -> int:
        """A new engine starts for the tenant: its fencing token, one more than the last."""
        with self._begin(tenant_id) as connection:
            connection.execute(
                update(tenants)
                .where(tenants.c.id == tenant_id)
                .values(engine_epoch=tenants.c.engine_epoch + 1)
            )
            return connection.scalar(
                select(tenants.c.engine_epoch).where(tenants.c.id == tenant_id)
            )

    def _fence(self, connection: Connection, tenant_id: int, epoch: int):
        """The tenant's row, read FOR SHARE, when `epoch` is still its newest engine's token:
        a newer engine's start waits for this transaction, and this one for a newer start."""
        query = select(tenants.c.engine_epoch, tenants.c.dialing_enabled).where(
            tenants.c.id == tenant_id
        )
        if not self.sqlite:
            query = query.with_for_update(read=True)
        row = connection.execute(query).first()
        if row is None or row.engine_epoch != epoch:
            raise Refused(
                "fenced",
                f"engine {epoch} of tenant {tenant_id} is not the newest "
                f"({row.engine_epoch if row else 'tenant gone'})",
            )
        return row

    # --- which tenants, and their settings -------------------------------------------------

    def tenants_to_dial(self) -> list[int]:
        """Tenants whose engine should run: dialing on and a SIP account with a PBX set."""
        with self._begin("all") as connection:
            rows = connection.execute(
                select(Tenant.id).where(
                    Tenant.dialing_enabled.is_(True),
                    select(sip_accounts.c.id)
                    .where(sip_accounts.c.tenant_id == Tenant.id, sip_accounts.c.host != "")
                    .exists(),
                )
            )
            return [row[0] for row in rows]

    def settings(self, tenant_id: int) -> TenantSettings | None:
        with self._begin(tenant_id) as connection:
            tenant = connection.execute(
                select(tenants.c.time_zone, tenants.c.dialing_enabled).where(
                    tenants.c.id == tenant_id
                )
            ).first()
            if tenant is None:
                return None
            operators = connection.execute(
                select(Operator.id, Operator.extension, Operator.team_id).where(
                    Operator.tenant_id == tenant_id, Operator.active.is_(True)
                )
            ).all()
            extensions = {row.id: row.extension for row in operators}
            running = self._running_campaigns(connection, tenant_id, operators)
            used = {c.account_id for c in running if c.account_id is not None}
            rows = connection.execute(
                select(sip_accounts).where(
                    sip_accounts.c.tenant_id == tenant_id,
                    sip_accounts.c.id.in_(used),
                    sip_accounts.c.host != "",
                )
            ).all()
        accounts = {row.id: self._account(row) for row in rows}
        return TenantSettings(
            tenant_id=tenant_id,
            time_zone=tenant.time_zone,
            dialing_enabled=bool(tenant.dialing_enabled),
            operators=extensions,
            accounts=accounts,
            campaigns=tuple(
                c if c.account_id in accounts else replace(c, account_id=None) for c in running
            ),
        )

    def _account(self, row) -> AccountSettings:
        password = ""
        if row.password_encrypted:
            try:
                password = self.secrets.decrypt(row.password_encrypted)
            except SecretError:
                password = ""  # registration then fails with "wrong username or password"
        return AccountSettings(
            account_id=row.id,
            account=Account(
                host=row.host,
                port=row.port,
                username=row.username,
                password=password,
                auth_username=row.auth_username or None,
                realm=row.realm or None,
                outbound_proxy=outbound_proxy(row.outbound_proxy),
                transport=row.transport,
                tls_ca_pem=row.tls_ca_pem or "",
                use_sips=bool(row.use_sips),
            ),
            dial_format=row.dial_format,
            refer_format=row.refer_format,
            refer_headers=row.refer_headers or "",
            transfer_wait=float(row.transfer_wait_seconds),
        )

    @staticmethod
    def _running_campaigns(
        connection: Connection, tenant_id: int, operators: list
    ) -> tuple[CampaignSettings, ...]:
        """The tenant's running campaigns, the default first, each with its rules and who
        works it: its operators' own weights, else their team's; a campaign without members
        is everyone's (None)."""
        rows = (
            connection.execute(
                select(campaigns)
                .where(
                    campaigns.c.tenant_id == tenant_id,
                    campaigns.c.state == CampaignState.RUNNING.value,
                )
                .order_by(campaigns.c.is_default.desc(), campaigns.c.id)
            )
            .mappings()
            .all()
        )
        members = connection.execute(
            select(
                campaign_members.c.campaign_id,
                campaign_members.c.operator_id,
                campaign_members.c.team_id,
                campaign_members.c.weight,
            ).where(campaign_members.c.tenant_id == tenant_id)
        ).all()
        teams: dict[int, list[int]] = {}
        for operator in operators:
            if operator.team_id is not None:
                teams.setdefault(operator.team_id, []).append(operator.id)
        active = {operator.id for operator in operators}
        weights: dict[int, dict[int, int]] = {}
        for member in sorted(members, key=lambda m: m.operator_id is not None):  # teams first
            into = weights.setdefault(member.campaign_id, {})
            if member.team_id is not None:
                into.update(dict.fromkeys(teams.get(member.team_id, ()), member.weight))
            elif member.operator_id in active:
                into[member.operator_id] = member.weight
        return tuple(_campaign_settings(row, weights.get(row["id"])) for row in rows)

    def abandon_counts(
        self, tenant_id: int, since: datetime, campaign_id: int | None = None
    ) -> tuple[int, int]:
        """(picked up, abandoned) attempts (of the campaign, or of every campaign) that
        started since `since`: the customer picked up, and of those, found no free operator
        (hung up, or sent to the campaign's fallback: both count against the cap).
        The measured abandon rate of a campaign's predictive pacing (engine/pacer.py), read
        every minute or so, never every tick. The whole hours the
        reports' roll-up holds (webapp/services/rollup.py) are summed from `report_hours`
        (some 720 rows for a 30-day window), the rest is counted from the attempts: the part
        hour at the start and everything since the last hour rolled up."""
        abandoned = attempts.c.detail.in_([detail.value for detail in ABANDONED])
        with self._begin(tenant_id) as connection:
            until = _utc(
                connection.scalar(
                    select(report_rollups.c.rolled_until).where(
                        report_rollups.c.tenant_id == tenant_id
                    )
                )
            )
            first = ceil_hour(since)
            rolled = (0, 0)
            raw = attempts.c.invite_at >= since
            if until is not None and until > first:
                hours = report_hours.c
                no_operator = case(
                    (hours.detail.in_([detail.value for detail in ABANDONED]), hours.attempts),
                    else_=0,
                )
                rolled = connection.execute(
                    select(
                        func.coalesce(func.sum(hours.picked_up), 0),
                        func.coalesce(func.sum(no_operator), 0),
                    ).where(
                        hours.tenant_id == tenant_id,
                        hours.hour >= first,
                        hours.hour < until,
                        *([hours.campaign_id == campaign_id] if campaign_id is not None else []),
                    )
                ).one()
                raw = and_(raw, or_(attempts.c.invite_at < first, attempts.c.invite_at >= until))
            row = connection.execute(
                select(
                    func.count().filter(attempts.c.answer_at.is_not(None)),
                    func.count().filter(abandoned),
                ).where(
                    attempts.c.tenant_id == tenant_id,
                    raw,
                    *([attempts.c.campaign_id == campaign_id] if campaign_id is not None else []),
                )
            ).one()
        return int(row[0]) + int(rolled[0]), int(row[1]) + int(rolled[1])

    # --- claiming ----------------------------------------------------------------------------

    @staticmethod
    def _due(slot: str, shape: Shape = (False, True, "new_first")):
        """The due leads of one campaign, as a condition whose values are parameters named
        after `slot` (`_due_values`): the statements are built once per shape and reused,
        which keeps SQLAlchemy's building and result set-up out of every claim. `shape` is
        (only some zones are inside the calling hours, the tenant's zone is, the lead order).

        A callback is due whatever its attempts; a personal one only while its operator is
        free (`free`), after the grace period (`grace_{slot}`: callbacks due before it go to
        anyone), or when its operator is no longer an active one (read in the statement, so
        the operator's deactivation counts at once)."""
        callback = leads.c.callback_at.is_not(None)
        operator = leads.c.callback_operator_id
        conditions = [
            leads.c.tenant_id == bindparam("tenant"),
            leads.c.campaign_id == bindparam(f"campaign_{slot}"),
            leads.c.status.in_(DIALABLE),
            or_(leads.c.next_attempt_at.is_(None), leads.c.next_attempt_at <= bindparam("now")),
            or_(leads.c.attempts < bindparam(f"max_attempts_{slot}"), callback),
            or_(
                operator.is_(None),
                operator.in_(bindparam("free", expanding=True)),
                ~exists().where(  # deactivated or deleted: no longer waited for
                    operators.c.tenant_id == leads.c.tenant_id,
                    operators.c.id == operator,
                    operators.c.active.is_(True),
                ),
                leads.c.callback_at <= bindparam(f"grace_{slot}"),
            ),
        ]
        some_zones, tenant_zone_open, _ = shape
        if some_zones:
            in_hours = leads.c.time_zone.in_(bindparam(f"zones_{slot}", expanding=True))
            if tenant_zone_open:
                in_hours = or_(in_hours, leads.c.time_zone.is_(None))
            conditions.append(in_hours)
        elif not tenant_zone_open:
            conditions.append(leads.c.time_zone.is_not(None))
        return and_(*conditions)

    @staticmethod
    def _shape(window: Window | None, campaign: CampaignSettings) -> Shape:
        """What a calling window (None: the whole day) and a campaign's lead order make of
        `_due`'s condition and the claim's order."""
        if window is None:
            return (False, True, campaign.lead_order)
        return (window.zones is not None, window.tenant_zone_open, campaign.lead_order)

    @staticmethod
    def _due_values(
        slot: str, campaign: CampaignSettings, window: Window | None, now: datetime
    ) -> dict:
        values = {
            f"campaign_{slot}": campaign.campaign_id,
            f"max_attempts_{slot}": campaign.max_attempts,
            f"grace_{slot}": now - timedelta(minutes=campaign.callback_grace_minutes),
        }
        if window is not None and window.zones is not None:
            values[f"zones_{slot}"] = list(window.zones)
        return values

    @staticmethod
    def _order(lead_order: str) -> tuple:
        """Due callbacks first (the earliest first), then by the campaign's lead order."""
        new = leads.c.status == LeadStatus.NEW.value
        first = (leads.c.callback_at.is_(None), leads.c.callback_at)
        then = (leads.c.priority.desc(), leads.c.next_attempt_at, leads.c.id)
        if lead_order == "retries_first":
            return (*first, new.asc(), *then)
        if lead_order == "priority":  # ties: the one waiting the longest, new or retried
            waiting = func.coalesce(leads.c.next_attempt_at, leads.c.created_at)
            return (*first, leads.c.priority.desc(), waiting, leads.c.id)
        return (*first, new.desc(), *then)

    def _claim_statement(self, shapes: tuple[Shape, ...]):
        """The claim's select of due leads for so many campaigns in one statement: slot i
        is the i-th campaign's ordered, limited (on PostgreSQL locked) select, with its
        running state checked in the same statement, put together with UNION ALL."""
        statement = self._claim_statements.get(shapes)
        if statement is not None:
            return statement
        columns = (
            leads.c.id,
            leads.c.campaign_id,
            leads.c.phone,
            leads.c.attempts,
            # Offered first at the answer: a personal callback's operator, else the last one.
            func.coalesce(leads.c.callback_operator_id, leads.c.last_operator_id).label(
                "last_operator_id"
            ),
            leads.c.callback_at,
        )
        selects = []
        for i, shape in enumerate(shapes):
            running = exists().where(  # a campaign paused by now is not claimed
                campaigns.c.tenant_id == bindparam("tenant"),
                campaigns.c.id == bindparam(f"campaign_{i}"),
                campaigns.c.state == CampaignState.RUNNING.value,
            )
            query = (
                select(*columns)
                .where(self._due(str(i), shape), running)
                .order_by(*self._order(shape[2]))
                .limit(bindparam(f"count_{i}"))
            )
            if not self.sqlite:
                query = query.with_for_update(skip_locked=True, of=leads)
            selects.append(query)
        statement = (
            selects[0] if len(selects) == 1 else union_all(*(select(q.subquery()) for q in selects))
        )
        self._claim_statements[shapes] = statement
        return statement

    def claim(
        self,
        settings: TenantSettings,
        engine: str,
        epoch: int,
        wanted: Mapping[int, int],
        windows: Mapping[int, Window],
        dial_uri: Callable[[int, str], str],
        free: Collection[int] = (),
    ) -> list[Claimed]:
        """Claim up to so many due leads of each running campaign of `wanted` ({campaign:
        count}, in one transaction), each inside its calling window: due callbacks first
        (whatever their attempts; a personal one while its operator is among the `free`
        ones, `_due`), then by the campaign's lead order, priority and due time. A campaign
        paused since the settings were read is not claimed (its state is read in the same
        transaction). Refused (nothing claimed) when `epoch` is not the tenant's newest
        engine, or when dialing is off by now."""
        now = datetime.now(UTC)
        shapes: list[Shape] = []
        values: dict = {
            "tenant": settings.tenant_id,
            "now": now,
            "free": list(free),
        }
        for campaign_id, count in wanted.items():
            campaign = settings.campaign(campaign_id)
            if count <= 0 or campaign is None or campaign_id not in windows:
                continue
            slot = str(len(shapes))
            shapes.append(self._shape(windows[campaign_id], campaign))
            values.update(self._due_values(slot, campaign, windows[campaign_id], now))
            values[f"count_{slot}"] = count
        if not shapes:
            return []
        claim = self._claim_statement(tuple(shapes))
        with self._begin(settings.tenant_id) as connection:
            tenant = self._fence(connection, settings.tenant_id, epoch)
            if not tenant.dialing_enabled:
                raise Refused("dialing_off", f"dialing is off for tenant {settings.tenant_id}")
            candidates = connection.execute(claim, values).all()
            if not candidates:
                return []
            blocked = self._on_do_not_call(
                connection, settings.tenant_id, [row.phone for row in candidates]
            )
            if blocked:
                connection.execute(
                    update(leads)
                    .where(
                        leads.c.tenant_id == settings.tenant_id,
                        leads.c.id.in_([r.id for r in candidates if r.phone in blocked]),
                    )
                    .values(status=LeadStatus.DO_NOT_CALL.value)
                )
            chosen = [row for row in candidates if row.phone not in blocked]
            if not chosen:
                return []
            uris = {row.id: dial_uri(row.campaign_id, row.phone) for row in chosen}
            connection.execute(
                update(leads)
                .where(
                    leads.c.tenant_id == settings.tenant_id,
                    leads.c.id.in_([row.id for row in chosen]),
                )
                .values(status=LeadStatus.DIALING.value, attempts=leads.c.attempts + 1)
            )
            ids = (
                connection.execute(
                    attempts.insert().returning(attempts.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "tenant_id": settings.tenant_id,
                            "lead_id": row.id,
                            "campaign_id": row.campaign_id,
                            "dialed_uri": uris[row.id],
                            "invite_at": now,
                            "engine": engine,
                            "callback": row.callback_at is not None,
                        }
                        for row in chosen
                    ],
                )
                .scalars()
                .all()
            )
        return [
            Claimed(
                row.id,
                attempt_id,
                row.phone,
                uris[row.id],
                row.attempts + 1,
                row.last_operator_id,
                row.campaign_id,
                row.callback_at is not None,
            )
            for row, attempt_id in zip(chosen, ids, strict=True)
        ]

    @staticmethod
    def _on_do_not_call(connection: Connection, tenant_id: int, phones: list[str]) -> set[str]:
        """The phones among these that the tenant's do-not-call list forbids."""
        prefixes = {phone[:n] for phone in phones for n in range(2, len(phone) + 1)}
        entries = connection.execute(
            select(do_not_call.c.number, do_not_call.c.prefix).where(
                do_not_call.c.tenant_id == tenant_id, do_not_call.c.number.in_(prefixes)
            )
        ).all()
        if not entries:
            return set()
        exact = {e.number for e in entries if not e.prefix}
        starts = tuple(e.number for e in entries if e.prefix)
        return {p for p in phones if p in exact or (starts and p.startswith(starts))}

    def idle_reasons(self, settings: TenantSettings, campaign_ids: list[int]) -> dict[int, str]:
        """Why claims of these running campaigns found nothing: {campaign:
        "outside_calling_hours" (leads are due, none inside its window) or "no_due_leads"},
        and under 0 the tenant's own: "campaigns_paused" when nothing of its running
        campaigns is due but a paused campaign's leads are (engine.dialer.REASONS)."""
        now = datetime.now(UTC)
        reasons: dict[int, str] = {}
        with self._begin(settings.tenant_id) as connection:
            for campaign_id in campaign_ids:
                campaign = settings.campaign(campaign_id)
                if campaign is None:
                    continue
                due = connection.execute(
                    select(leads.c.id).where(self._due("0")).limit(1),
                    {
                        "tenant": settings.tenant_id,
                        "now": now,
                        "free": [],
                        **self._due_values("0", campaign, None, now),
                    },
                ).first()
                reasons[campaign_id] = "outside_calling_hours" if due else "no_due_leads"
            if all(reason == "no_due_leads" for reason in reasons.values()):
                paused = connection.execute(
                    select(leads.c.id)
                    .join(
                        campaigns,
                        and_(
                            campaigns.c.tenant_id == leads.c.tenant_id,
                            campaigns.c.id == leads.c.campaign_id,
                        ),
                    )
                    .where(
                        leads.c.tenant_id == settings.tenant_id,
                        campaigns.c.state == CampaignState.PAUSED.value,
                        leads.c.status.in_(DIALABLE),
                        or_(leads.c.next_attempt_at.is_(None), leads.c.next_attempt_at <= now),
                        or_(
                            leads.c.attempts < campaigns.c.max_attempts,
                            leads.c.callback_at.is_not(None),
                        ),
                    )
                    .limit(1)
                ).first()
                reasons[0] = "campaigns_paused" if paused else "no_due_leads"
        return reasons

    # --- writing results ---------------------------------------------------------------------

    def finish(self, tenant_id: int, epoch: int, finished: list[Finished]) -> int:
        """Write CDRs and leads' next steps; returns how many were still ours to write.
        Refused, nothing written, when `epoch` is not the tenant's newest engine (its
        successor closed these attempts, or will). The tenant's webhook deliveries are
        recorded in the same transaction and, after the commit, tried by one job
        (webapp/webhooks/delivery.py)."""
        written: list[int] = []
        with self._begin(tenant_id) as connection:
            self._fence(connection, tenant_id, epoch)
            for item in finished:
                a = item.attempt
                values = {
                    "operator_id": item.operator_id,
                    "refer_to": a.refer_to,
                    "outcome": (a.outcome or Outcome.TECHNICAL_ERROR).value,
                    "detail": a.detail.value if a.detail else None,
                    "sip_code": a.sip_code,
                    "sip_reason": (a.sip_reason or None) and a.sip_reason[:255],
                    "ringing_at": _time(a.ringing_at),
                    "answer_at": _time(a.answer_at),
                    "refer_at": _time(a.refer_at),
                    "transfer_result_at": _time(a.transfer_result_at),
                    "end_at": _time(a.end_at) or datetime.now(UTC),
                    "transfer_result": a.transfer_result.value if a.transfer_result else None,
                    "transfer_sip_code": a.transfer_sip_code,
                    "transfer_sip_reason": (a.transfer_sip_reason or None)
                    and a.transfer_sip_reason[:255],
                }
                if a.invite_at is not None:
                    values["invite_at"] = _time(a.invite_at)
                result = connection.execute(
                    update(attempts)
                    .where(
                        attempts.c.tenant_id == tenant_id,
                        attempts.c.id == item.attempt_id,
                        attempts.c.outcome.is_(None),
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    continue  # closed by the engine that took the tenant over
                written.append(item.attempt_id)
                lead_values = {
                    "status": item.lead_status,
                    "next_attempt_at": item.next_attempt_at,
                    "last_outcome": values["outcome"],
                    "callback_at": None,  # a callback is kept by its attempt
                    "callback_operator_id": None,
                }
                if item.operator_id is not None:
                    lead_values["last_operator_id"] = item.operator_id
                connection.execute(
                    update(leads)
                    .where(
                        leads.c.tenant_id == tenant_id,
                        leads.c.id == item.lead_id,
                        leads.c.status == LeadStatus.DIALING.value,
                    )
                    .values(**lead_values)
                )
            deliveries = (
                record_finished(connection, tenant_id, written) if self.queue is not None else []
            )
        if deliveries:
            announce(self.queue, tenant_id, deliveries)
        return len(written)

    def put_back(self, tenant_id: int, epoch: int, put: list[PutBack]) -> int:
        """Preview dialing: leads claimed and never dialed (skipped, or their operator went
        off line) go back. Their open attempts are deleted, not written: no call was made,
        so there is no CDR, and the lead's attempt count is given back. The lead is due
        again at the time given (None: at once), `new` if it never was dialed, else `retry`;
        a skip keeps its reason and time on the lead. Fenced like `finish`; returns how many
        were still ours."""
        now = datetime.now(UTC)
        done = 0
        with self._begin(tenant_id) as connection:
            self._fence(connection, tenant_id, epoch)
            for item in put:
                deleted = connection.execute(
                    delete(attempts).where(
                        attempts.c.tenant_id == tenant_id,
                        attempts.c.id == item.attempt_id,
                        attempts.c.outcome.is_(None),
                    )
                )
                if deleted.rowcount != 1:
                    continue  # closed by the engine that took the tenant over
                done += 1
                values: dict = {
                    "status": case(
                        (leads.c.attempts <= 1, LeadStatus.NEW.value),
                        else_=LeadStatus.RETRY.value,
                    ),
                    "attempts": leads.c.attempts - 1,
                    "next_attempt_at": item.next_attempt_at,
                }
                if item.skip_reason is not None:
                    values.update(skip_reason=item.skip_reason, skipped_at=now)
                connection.execute(
                    update(leads)
                    .where(
                        leads.c.tenant_id == tenant_id,
                        leads.c.id == item.lead_id,
                        leads.c.status == LeadStatus.DIALING.value,
                    )
                    .values(**values)
                )
        return done

    def correct_transfer(
        self,
        tenant_id: int,
        epoch: int,
        attempt_id: int,
        result: TransferResult,
        sip_code: int,
        at: datetime,
        sip_reason: str = "",
    ) -> bool:
        """The final NOTIFY of an attempt's transfer came after the engine's wait (written
        `technical_error` / `transfer_timeout`): its result corrects the attempt, fenced like
        `finish`, in one transaction. Succeeded: the attempt is `answered` with no detail, its
        lead `reached` with no next attempt if it is still where this attempt left it (retry
        or exhausted, no newer attempt), and the webhooks hear of the attempt again
        (`attempt.finished`, with the corrected attempt). Returns whether it was corrected."""
        succeeded = result == TransferResult.SUCCEEDED
        with self._begin(tenant_id) as connection:
            self._fence(connection, tenant_id, epoch)
            timed_out = and_(
                attempts.c.tenant_id == tenant_id,
                attempts.c.id == attempt_id,
                attempts.c.detail == Detail.TRANSFER_TIMEOUT.value,
            )
            row = connection.execute(
                select(attempts.c.lead_id, attempts.c.operator_id).where(timed_out)
            ).first()
            if row is None:  # not an attempt whose transfer timed out (or not written yet)
                return False
            values: dict = {
                "transfer_result": result.value,
                "transfer_sip_code": sip_code,
                "transfer_sip_reason": (sip_reason or None) and sip_reason[:255],
                "transfer_result_at": at,
            }
            if succeeded:
                values.update(outcome=Outcome.ANSWERED.value, detail=None)
            connection.execute(update(attempts).where(timed_out).values(**values))
            if succeeded:
                newer = (
                    select(attempts.c.id)
                    .where(
                        attempts.c.tenant_id == tenant_id,
                        attempts.c.lead_id == row.lead_id,
                        attempts.c.id > attempt_id,
                    )
                    .exists()
                )
                lead_values: dict = {
                    "status": LeadStatus.REACHED.value,
                    "next_attempt_at": None,
                    "last_outcome": Outcome.ANSWERED.value,
                }
                if row.operator_id is not None:
                    lead_values["last_operator_id"] = row.operator_id
                connection.execute(
                    update(leads)
                    .where(
                        leads.c.tenant_id == tenant_id,
                        leads.c.id == row.lead_id,
                        leads.c.status.in_((LeadStatus.RETRY.value, LeadStatus.EXHAUSTED.value)),
                        leads.c.callback_at.is_(None),  # not one the operator scheduled since
                        ~newer,
                    )
                    .values(**lead_values)
                )
            deliveries = (
                record_finished(connection, tenant_id, [attempt_id])
                if succeeded and self.queue is not None
                else []
            )
        if deliveries:
            announce(self.queue, tenant_id, deliveries)
        return True

    def recover(
        self,
        tenant_id: int,
        engine: str,
        epoch: int,
        settings: TenantSettings,
        handed: dict[int, int],
        bound: float,
    ) -> list[Lost]:
        """Close the attempts in progress of engines other than `engine` (`engine_lost`) and
        put their leads back, also any lead left `dialing` without an open attempt. A lead in
        `handed` ({lead: operator}: operators the lost engine had taken for a transfer) is
        `reached`, its attempt `answered` with the transfer `unconfirmed`: the customer may be
        talking to that operator, and must not be called again. The others are retried no
        sooner than their retry time, nor than `bound` seconds from now (the lost engine's
        calls may still ring). Returns the attempts closed."""
        now = datetime.now(UTC)
        with self._begin(tenant_id) as connection:
            self._fence(connection, tenant_id, epoch)
            rows = connection.execute(
                select(attempts.c.id, attempts.c.lead_id, attempts.c.invite_at).where(
                    attempts.c.tenant_id == tenant_id,
                    attempts.c.outcome.is_(None),
                    or_(attempts.c.engine.is_(None), attempts.c.engine != engine),
                )
            ).all()
            lost = [
                Lost(row.id, row.lead_id, _utc(row.invite_at), row.lead_id in handed)
                for row in rows
            ]
            closing = [item for item in lost if not item.handed]
            if closing:
                connection.execute(
                    update(attempts)
                    .where(
                        attempts.c.tenant_id == tenant_id,
                        attempts.c.id.in_([item.attempt_id for item in closing]),
                        attempts.c.outcome.is_(None),
                    )
                    .values(
                        outcome=Outcome.TECHNICAL_ERROR.value,
                        detail=Detail.ENGINE_LOST.value,
                        end_at=now,
                    )
                )
            for item in lost:
                if not item.handed:
                    continue
                operator = handed[item.lead_id]
                connection.execute(
                    update(attempts)
                    .where(
                        attempts.c.tenant_id == tenant_id,
                        attempts.c.id == item.attempt_id,
                        attempts.c.outcome.is_(None),
                    )
                    .values(
                        outcome=Outcome.ANSWERED.value,
                        detail=Detail.ENGINE_LOST.value,
                        operator_id=operator,
                        end_at=now,
                        transfer_result=TransferResult.UNCONFIRMED.value,
                    )
                )
                connection.execute(
                    update(leads)
                    .where(
                        leads.c.tenant_id == tenant_id,
                        leads.c.id == item.lead_id,
                        leads.c.status == LeadStatus.DIALING.value,
                    )
                    .values(
                        status=LeadStatus.REACHED.value,
                        next_attempt_at=None,
                        last_outcome=Outcome.ANSWERED.value,
                        last_operator_id=operator,
                    )
                )
            open_attempt = (
                select(attempts.c.id)
                .where(
                    attempts.c.tenant_id == leads.c.tenant_id,
                    attempts.c.lead_id == leads.c.id,
                    attempts.c.outcome.is_(None),
                )
                .exists()
            )
            # Each lead by its campaign's rules, whatever the campaign's state now.
            rules = connection.execute(
                select(
                    campaigns.c.id,
                    campaigns.c.max_attempts,
                    campaigns.c.retry_technical_error_minutes,
                ).where(campaigns.c.tenant_id == tenant_id)
            ).all()
            for campaign_id, max_attempts, retry_minutes in rules:
                stranded = and_(
                    leads.c.tenant_id == tenant_id,
                    leads.c.campaign_id == campaign_id,
                    leads.c.status == LeadStatus.DIALING.value,
                    ~open_attempt,
                )
                connection.execute(  # a callback's lead keeps its callback: retried
                    update(leads)
                    .where(
                        stranded, leads.c.attempts >= max_attempts, leads.c.callback_at.is_(None)
                    )
                    .values(
                        status=LeadStatus.EXHAUSTED.value,
                        next_attempt_at=None,
                        last_outcome=Outcome.TECHNICAL_ERROR.value,
                    )
                )
                retry_at = now + max(timedelta(minutes=retry_minutes), timedelta(seconds=bound))
                connection.execute(
                    update(leads)
                    .where(stranded)
                    .values(
                        status=LeadStatus.RETRY.value,
                        next_attempt_at=retry_at,
                        last_outcome=Outcome.TECHNICAL_ERROR.value,
                    )
                )
        return lost

    # --- for tests and reports ---------------------------------------------------------------

    def count_leads(self, tenant_id: int) -> dict[str, int]:
        with self._begin(tenant_id) as connection:
            rows = connection.execute(
                select(leads.c.status, func.count())
                .where(leads.c.tenant_id == tenant_id)
                .group_by(leads.c.status)
            )
            return {row[0]: row[1] for row in rows}


class _Unit:
    """A connection with its transaction: commit on success, roll back on error."""

    def __init__(self, connection: Connection, transaction):
        self.connection = connection
        self.transaction = transaction

    def __enter__(self) -> Connection:
        return self.connection

    def __exit__(self, kind, error, tb) -> None:
        try:
            if kind is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _sqlite_connect(dbapi_connection, record) -> None:
    # Transactions are begun by us (BEGIN IMMEDIATE below), not by the driver; WAL lets the
    # portal read while the engine writes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    with contextlib.suppress(sqlite3.OperationalError):  # busy now: the next connection will
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
