"""The console's pages and its event stream.

The stream is Server-Sent Events read from the operator's Redis stream of events (engine:
`t:{id}:op:{op}:pops`) through the web process's one reader (webapp/streams.py, which also
caps how many streams a person, a tenant and a process hold): each event carries the
stream's id, so a browser that lost the connection reconnects with `Last-Event-ID` and gets
what it missed. A connection lasts at most `STREAM_SECONDS`, then the browser reconnects by
itself; one whose browser went away ends within `PEER_CHECK_SECONDS`.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from engine.bus import BadEvent, parse_event
from engine.presence import BUSY, FREE, PREVIEWING, TRANSFERRING, WRAP_UP
from engine.preview import SKIP_REASONS
from webapp import bus, streams
from webapp.console import bp
from webapp.extensions import db
from webapp.labels import SKIP_LABELS, break_label
from webapp.models import Campaign, Lead, Role
from webapp.roles import role_required
from webapp.services import breaks, console, sessions
from webapp.tenancy import current_tenant

#: How long one event-stream connection lasts, the keep-alive comment's interval (the
#: stream's lease is renewed with it), and how often a quiet stream looks whether its
#: browser closed the connection.
STREAM_SECONDS = 300
KEEP_ALIVE_SECONDS = 15
PEER_CHECK_SECONDS = 5

STATE_LABELS = {
    None: _l("Off line"),
    FREE: _l("On line: waiting for a call"),
    PREVIEWING: _l("A lead to look at: call or skip"),
    TRANSFERRING: _l("A call is coming"),
    BUSY: _l("With a customer"),
    WRAP_UP: _l("Wrap-up"),
}

assert set(SKIP_LABELS) == set(SKIP_REASONS)

operator_only = role_required(Role.OPERATOR)


def _operator():
    operator = console.operator_of(current_user)
    if operator is None:
        abort(403)
    return operator


def _off_line(operator) -> tuple[str, float | None, str]:
    """What the console says of an operator off line: the label (with the reason of their
    break), since when, and who took them off line (empty: they chose it, or no break)."""
    label = str(STATE_LABELS[None])
    row = breaks.latest(operator.tenant_id, operator.id)
    if row is None:
        return label, None, ""
    label = f"{label} · {break_label(row.reason)}"
    since = None if row.ended_at is not None else row.started_at.timestamp()
    by = breaks.taken_by_email(row)
    if by is None:
        return label, since, ""
    notice = _(
        "%(who)s took you off line: %(reason)s. Go on line when you are back at work.",
        who=by or _("A supervisor"),
        reason=break_label(row.reason),
    )
    return label, since, notice


def _state_json(operator) -> dict:
    state = console.state_of(operator)
    if state is None:
        label, since, notice = _off_line(operator)
        return {
            "state": "off_line",
            "label": label,
            "since": since,
            "lead_id": None,
            "notice": notice,
        }
    return {
        "state": state.state,
        "label": str(STATE_LABELS[state.state]),
        "since": state.since,
        "lead_id": state.lead_id,
        "notice": "",
    }


@bp.get("/")
@operator_only
def index():
    operator = _operator()
    state = console.state_of(operator)
    # The event stream starts after the newest event as the page is made, so a pop that
    # comes before the stream connects is not lost.
    after = _newest_event(bus.client(), bus.keys(operator.tenant_id).pops(operator.id))
    label, since, notice = (
        (STATE_LABELS[state.state], state.since, "") if state else _off_line(operator)
    )
    return render_template(
        "console/index.html",
        operator=operator,
        state=state,
        since=since,
        after=after,
        state_label=label,
        notice=notice,
        reasons=[(reason, break_label(reason)) for reason in breaks.reasons(current_tenant())],
        callbacks=console.callbacks_today(operator, current_tenant().time_zone),
    )


@bp.get("/callbacks")
@operator_only
def callbacks():
    """The operator's callbacks for today (the list under the card, reloaded after Finish)."""
    operator = _operator()
    return render_template(
        "console/_callbacks.html",
        callbacks=console.callbacks_today(operator, current_tenant().time_zone),
    )


@bp.post("/on-line")
@operator_only
def on_line():
    operator = _operator()
    sessions.settle(operator.tenant_id, operator.id)
    console.go_on_line(operator)
    breaks.back_on_line(current_tenant(), operator.id)
    sessions.on_line(operator.tenant_id, operator.id)
    return _answer()


@bp.post("/off-line")
@operator_only
def off_line():
    """Off line for a reason of the company's list (required): a break, or the end of the
    operator's shift."""
    operator = _operator()
    tenant = current_tenant()
    reason = request.form.get("reason", "")
    if reason not in breaks.reasons(tenant):
        message = _("Choose why you go off line.")
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error=message), 400
        flash(message, "error")
        return redirect(url_for("console.index"))
    breaks.start(tenant, operator.id, reason)  # first: their other consoles ask for it
    console.go_off_line(operator)
    return _answer()


@bp.post("/wrap-up")
@operator_only
def wrap_up():
    """The talk with the customer is over: the operator writes the result."""
    operator = _operator()
    state = console.state_of(operator)
    sessions.talk_ended(operator.tenant_id, operator.id, state.lead_id if state else None)
    bus.presence(operator.tenant_id).wrap_up(operator.id)
    return _answer()


@bp.post("/heartbeat")
@operator_only
def heartbeat():
    operator = _operator()
    sessions.settle(operator.tenant_id, operator.id)
    if console.heartbeat(operator, wants_on_line=request.form.get("on_line") == "1"):
        sessions.on_line(operator.tenant_id, operator.id)
    return jsonify(_state_json(operator))


@bp.get("/state")
@operator_only
def state():
    return jsonify(_state_json(_operator()))


def _answer():
    if request.accept_mimetypes.best == "application/json":
        return jsonify(_state_json(_operator()))
    return redirect(url_for("console.index"))


@bp.get("/card")
@operator_only
def card():
    """The card of the lead this operator is busy with (or about to be)."""
    operator = _operator()
    state = console.state_of(operator)
    if state is None or state.lead_id is None:
        return "", 204
    lead = db.session.get(Lead, state.lead_id)
    if lead is None or lead.tenant_id != operator.tenant_id:
        return "", 204
    campaign = _campaign_of(lead)
    return render_template(
        "console/_card.html",
        lead=lead,
        state=state,
        phone=_masked(lead.phone) if campaign.hide_numbers else lead.phone,
        attempts=console.previous_attempts(lead),
        results=campaign.result_choices,
        dial_at=console.preview_countdown(operator, state, lead),
        skip_reasons=SKIP_LABELS,
    )


def _campaign_of(lead: Lead) -> Campaign:
    """The lead's campaign: its results and whether its numbers are hidden."""
    return db.session.scalars(
        select(Campaign).where(
            Campaign.tenant_id == lead.tenant_id, Campaign.id == lead.campaign_id
        )
    ).one()


def _masked(phone: str) -> str:
    return phone[:-6] + "••••" + phone[-2:] if len(phone) > 8 else "••••"


@bp.post("/finish")
@operator_only
def finish():
    """The operator records the result: free again; "call back at" schedules the lead."""
    operator = _operator()
    state = console.state_of(operator)
    lead = None
    if state is not None and state.lead_id is not None:
        lead = db.session.get(Lead, state.lead_id)
    call_back_at = None
    text = request.form.get("call_back_at", "").strip()
    if text and lead is not None:
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            abort(400)
        zone = ZoneInfo(lead.time_zone or current_tenant().time_zone)
        call_back_at = local.replace(tzinfo=zone) if local.tzinfo is None else local
    result = request.form.get("result", "").strip()
    campaign = _campaign_of(lead) if lead is not None else None
    if campaign is None:  # no lead (any more): the default campaign's results
        campaign = db.session.scalars(
            select(Campaign).where(Campaign.tenant_id == operator.tenant_id, Campaign.is_default)
        ).one()
    if result and result not in campaign.result_choices:
        abort(400)
    comment = request.form.get("comment", "").strip()[:2000]
    if lead is not None:
        now = datetime.now(UTC)
        sessions.talk_ended(operator.tenant_id, operator.id, lead.id, now)
        sessions.wrap_up_ended(operator.tenant_id, operator.id, lead.id, now)
    myself = request.form.get("call_back_myself") == "1"
    console.finish(operator, lead, call_back_at, result, comment, myself)
    return _answer()


@bp.post("/preview")
@operator_only
def preview():
    """Preview dialing: Call, or Skip with a reason, on the lead the operator previews."""
    operator = _operator()
    lead_id = request.form.get("lead_id", "")
    choice = request.form.get("choice", "")
    reason = request.form.get("reason", "")
    if not lead_id.isdigit() or choice not in ("call", "skip"):
        abort(400)
    if choice == "skip" and reason not in SKIP_REASONS:
        abort(400)
    if not console.choose(operator, int(lead_id), choice, reason):
        abort(409)  # not previewing that lead any more: dialed by the countdown, or gone
    return _answer()


@bp.get("/events")
@operator_only
def events():
    """Server-Sent Events: screen pops and transfer results for this operator. Refused with
    429 (too many consoles of this person or tenant) or 503 (this process is full), with
    the reason as JSON and Retry-After (webapp/streams.py)."""
    operator = _operator()
    key = bus.keys(operator.tenant_id).pops(operator.id)
    last = request.headers.get("Last-Event-ID") or request.args.get("after") or "$"
    if last != "$" and not _stream_id(last):
        last = "$"
    if last == "$":  # no place to start from: after the newest event
        last = _newest_event(bus.client(), key)
    try:
        stream = streams.open_stream(operator.tenant_id, current_user.id, key, last)
    except streams.Refused as refused:
        answer = jsonify(error=refused.message, retry_after=refused.retry_after)
        return answer, refused.status, {"Retry-After": str(refused.retry_after)}
    # The stream needs no database: give the connection back to the pool now, or every
    # open console would hold one for its whole life.
    db.session.close()
    peer = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")

    def body():
        try:
            yield "retry: 1000\n\n"
            # Spread in time, so that consoles that connected together (after a restart)
            # neither keep alive nor reconnect all in the same second.
            now = time.monotonic()
            ends = now + STREAM_SECONDS * random.uniform(0.8, 1.0)
            keep_alive_at = now + KEEP_ALIVE_SECONDS * random.uniform(0.5, 1.0)
            while (now := time.monotonic()) < ends and not stream.overflowed:
                found = stream.wait(min(PEER_CHECK_SECONDS, keep_alive_at - now, ends - now))
                for event_id, fields in found:
                    try:
                        payload = parse_event(fields[b"event"])
                    except (BadEvent, KeyError):
                        continue
                    data = json.dumps(payload)
                    yield f"id: {event_id}\nevent: {payload['type']}\ndata: {data}\n\n"
                if time.monotonic() >= keep_alive_at:
                    yield ": keep-alive\n\n"
                    stream.renew()
                    keep_alive_at = time.monotonic() + KEEP_ALIVE_SECONDS
                elif not found and streams.peer_gone(peer):
                    return
        finally:
            stream.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    response = Response(body(), mimetype="text/event-stream", headers=headers)
    response.call_on_close(stream.close)  # also when the body was never started
    return response


def _newest_event(connection, key: str) -> str:
    newest = connection.xrevrange(key, count=1)
    return newest[0][0].decode() if newest else "0-0"


def _stream_id(text: str) -> bool:
    first, _, second = text.partition("-")
    return first.isdigit() and second.isdigit()
