"""Helpers for the engine's tests: tenants that dial a SIPp PBX, an engine host run in a
thread of the test (its own event loop), and reading back what the engine wrote."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time as clock

from sqlalchemy import select

from tests.conftest import PASSWORD, REDIS_PREFIX, REDIS_URL
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, SipAccount, Tenant
from webapp.models.campaign import RULES
from webapp.services.accounts import create_operator, create_tenant_with_admin
from webapp.services.leads import NewLead, create_lead


def dialing_tenant(app, name: str, pbx, extensions=("101", "102"), **settings) -> tuple[int, dict]:
    """A tenant with dialing on, its SIP account at the SIPp `pbx`, operators with these
    extensions (returned as {extension: operator id}), calls of every hour. `settings` go
    where they live (the tenant, its SIP account, its default campaign)."""
    slug = name.lower()
    with app.app_context():
        admin = create_tenant_with_admin(name, f"admin@{slug}.example", PASSWORD)
        tenant = admin.tenant
        account = SipAccount(tenant_id=tenant.id, name="Main trunk", host=pbx.host, port=pbx.port)
        account.username = f"{slug}-trunk"
        db.session.add(account)
        db.session.flush()
        values = dict(
            sip_account_id=account.id,
            dialing_enabled=True,
            ring_timeout_seconds=1,
            pacing_mode="progressive",
            calling_hours_start=clock(0, 0),
            calling_hours_end=clock(0, 0),
            retry_no_answer_minutes=7,
            retry_busy_minutes=3,
            retry_unavailable_minutes=11,
            retry_technical_error_minutes=2,
            wrap_up_timeout_seconds=0,
        )
        values.update(settings)
        _apply(tenant.id, values)
        operators = {}
        for extension in extensions:
            operator = create_operator(
                tenant,
                name=f"Operator {extension}",
                email=f"op{extension}@{slug}.example",
                extension=extension,
                password=PASSWORD,
                team_id=None,
            )
            db.session.flush()
            operators[extension] = operator.id
        db.session.commit()
        return tenant.id, operators


def add_leads(app, tenant_id: int, phones) -> list[int]:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        return [create_lead(tenant, NewLead(phone=phone))[0].id for phone in phones]


def add_leads_through_the_api(app, tenant_id: int, phones) -> list[int]:
    """What a tenant's CRM does: POST /api/v1/leads/bulk with an API token."""
    from webapp.services.api_access import create_token

    with app.app_context():
        _token, bearer = create_token(tenant_id, "CRM")
        db.session.commit()
    response = app.test_client().post(
        "/api/v1/leads/bulk",
        json={"leads": [{"phone": phone} for phone in phones]},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 200, response.get_json()
    return [item["lead"]["id"] for item in response.get_json()["results"]]


def go_on_line(app, tenant_id: int, *operator_ids: int) -> None:
    """What the console does when an operator presses Go on line."""
    with app.app_context():
        for operator_id in operator_ids:
            bus.presence(tenant_id).go_on_line(operator_id)


def _apply(tenant_id: int, values: dict) -> None:
    """Each setting where it lives: the tenant's own, its first SIP account's, or its
    default campaign's (its dialing rules)."""
    tenant = db.session.get(Tenant, tenant_id)
    campaign = db.session.scalar(
        select(Campaign).where(Campaign.tenant_id == tenant_id, Campaign.is_default)
    )
    account = db.session.scalar(
        select(SipAccount).where(SipAccount.tenant_id == tenant_id).order_by(SipAccount.id)
    )
    for key, value in values.items():
        if key in RULES:
            setattr(campaign, key, value)
        elif hasattr(Tenant, key):
            setattr(tenant, key, value)
        else:
            assert hasattr(SipAccount, key), key
            setattr(account, key, value)


def set_tenant(app, tenant_id: int, **values) -> None:
    """Change settings as the portal does: save, then wake the engine. Each goes where it
    lives: the tenant, its first SIP account, its default campaign."""
    with app.app_context():
        _apply(tenant_id, values)
        db.session.commit()
        bus.wake_engine(tenant_id, "settings")


def engine_state(app, tenant_id: int) -> dict:
    with app.app_context():
        raw = bus.client().hgetall(bus.keys(tenant_id).state)
    return {key.decode(): json.loads(value) for key, value in raw.items()}


def finish_as_they_come(
    app, tenant_id: int, count: int, timeout: float = 30.0, wrap_up: float = 0.0
) -> None:
    """Be the operators: finish each lead as soon as it reaches them (or, with `wrap_up`
    seconds, say the talk is over at once and finish the lead that long after), until
    `count` attempts have ended."""
    from engine.presence import BUSY, WRAP_UP, decode_all

    deadline = time.monotonic() + timeout
    while not settled(app, tenant_id, count)():
        assert time.monotonic() < deadline, f"{count} attempts did not end in {timeout} s"
        with app.app_context():
            presence = bus.presence(tenant_id)
            for operator_id, state in decode_all(presence.states()).items():
                if state.state == BUSY and wrap_up > 0:
                    presence.wrap_up(operator_id)
                elif state.state == BUSY or (
                    state.state == WRAP_UP and time.time() - state.since >= wrap_up
                ):
                    presence.finish(operator_id)
        time.sleep(0.05 if wrap_up else 0.1)


def leads_of(app, tenant_id: int) -> dict[str, Lead]:
    with app.app_context():
        rows = db.session.scalars(select(Lead).where(Lead.tenant_id == tenant_id)).all()
        db.session.expunge_all()
        return {lead.phone: lead for lead in rows}


def attempts_of(app, tenant_id: int) -> list[Attempt]:
    with app.app_context():
        rows = db.session.scalars(
            select(Attempt).where(Attempt.tenant_id == tenant_id).order_by(Attempt.id)
        ).all()
        db.session.expunge_all()
        return rows


def wait_until(
    condition: Callable[[], bool], timeout: float = 30.0, what: str | Callable[[], str] = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")


def settled(app, tenant_id: int, count: int) -> Callable[[], bool]:
    """All `count` leads attempted and no attempt in progress."""

    def check() -> bool:
        attempts = attempts_of(app, tenant_id)
        leads = leads_of(app, tenant_id).values()
        return (
            len({a.lead_id for a in attempts}) >= count
            and all(a.outcome is not None for a in attempts)
            and not any(lead.status == "dialing" for lead in leads)
        )

    return check


class HostThread:
    """An EngineHost running in a thread with its own event loop, like in a worker."""

    def __init__(
        self,
        database_url: str,
        redis_url: str = REDIS_URL,
        prefix: str = REDIS_PREFIX,
        queue=None,
        **options,
    ):
        """`queue`: the `webhooks` queue, for the store to enqueue deliveries on."""
        from engine.host import EngineHost
        from webapp.config import DEV_ENCRYPTION_KEY
        from webapp.services.dialing import DialingStore
        from webapp.services.secrets import SecretBox

        self.store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY), queue)
        options.setdefault("local_host", "127.0.0.1")
        self.host = EngineHost(self.store, redis_url, prefix, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self.host.run())
        except BaseException as error:  # surfaced by stop()
            self.error = error
        finally:
            self.loop.close()

    def __enter__(self) -> HostThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.host.stop)
            self.thread.join(timeout)
        assert not self.thread.is_alive(), "the engine host did not drain in time"
        self.store.close()
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc) -> None:
        self.stop()


# --- the demo PBX, and what it saw -----------------------------------------------------------


class PbxThread:
    """The demo PBX (engine/sim/pbx.py) in a thread of the test with its own event loop. Its
    journal says who was called, when, and how many at once (`calls_at_pbx`)."""

    def __init__(self, behaviour=None, username: str = "trunk", password: str = "secret"):
        from engine.sim.pbx import Behaviour, DemoPBX

        behaviour = behaviour or Behaviour(
            ring_min=0.3, ring_max=0.6, transfer_delay=0.2, by_last_digit=True
        )
        self.username, self.password = username, password
        self.pbx = DemoPBX(username, password, behaviour, seed=1)
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.done = self.loop.create_future()

        async def main():
            self.host, self.port = await self.pbx.start("127.0.0.1", 0)
            self.started.set()
            await self.done

        try:
            self.loop.run_until_complete(main())
        finally:
            self.pbx.close()
            self.loop.close()

    def __enter__(self) -> PbxThread:
        self.thread.start()
        assert self.started.wait(10), "the demo PBX did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.done.set_result, None)
        self.thread.join(10)

    @property
    def journal(self) -> list:
        return list(self.pbx.journal)


def demo_pbx_tenant(app, name: str, pbx: PbxThread, extensions=("101", "102"), **settings):
    """`dialing_tenant` for the demo PBX: its SIP account, with the password."""
    with app.app_context():
        secret = app.extensions["autocall.secrets"].encrypt(pbx.password)
    return dialing_tenant(
        app,
        name,
        pbx,
        extensions,
        username=pbx.username,
        password_encrypted=secret,
        **settings,
    )


@dataclass(frozen=True)
class PbxCall:
    """A call as the PBX saw it: from its INVITE to its end (None: still going)."""

    call_id: str
    number: str
    start: float
    end: float | None
    how: str  # how it ended (engine.sim.pbx.ENDS), or "" while going
    source: str  # the user agent that placed it ("host:port")


def calls_at_pbx(journal) -> list[PbxCall]:
    from engine.sim.pbx import ENDS

    started: dict[str, tuple[str, float, str]] = {}
    ended: dict[str, tuple[float, str]] = {}
    for entry in journal:
        if entry.kind == "invite":
            started[entry.call_id] = (entry.number, entry.at, entry.source)
        elif entry.kind in ENDS and entry.call_id not in ended:
            ended[entry.call_id] = (entry.at, entry.kind)
    return [
        PbxCall(call_id, number, start, *ended.get(call_id, (None, "")), source)
        for call_id, (number, start, source) in started.items()
    ]


def numbers_in_two_calls_at_once(calls: list[PbxCall]) -> list[str]:
    """Numbers the PBX had in two calls at the same moment."""
    by_number: dict[str, list[PbxCall]] = {}
    for call in calls:
        by_number.setdefault(call.number, []).append(call)
    twice = []
    for number, own in by_number.items():
        own.sort(key=lambda call: call.start)
        for earlier, later in itertools.pairwise(own):
            if earlier.end is None or earlier.end > later.start:
                twice.append(number)
    return twice


def most_at_once(calls: list[PbxCall]) -> int:
    """The most calls the PBX had at the same moment."""
    edges = sorted(
        [(call.start, 1) for call in calls]
        + [(call.end, -1) for call in calls if call.end is not None]
    )
    most = current = 0
    for _at, step in edges:
        current += step
        most = max(most, current)
    return most
