"""What a tenant's engine is doing, as the portal shows it: read from the engine's live
state in Redis (engine/dialer.py publishes it) and worded in the user's language."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp import bus

#: engine.dialer.REASONS and a campaign's own reasons, in the admin's words.
REASON_TEXT = {
    "stopping": _l("The engine is stopping and ending the calls in progress."),
    "pbx_unreachable": _l("The PBX cannot be reached."),
    "no_sip_port": _l(
        "The dialer has no free SIP port here: its port range (AUTOCALL_SIP_PORTS) is used up."
    ),
    "registering": _l("Registering with the PBX."),
    "registration_failed": _l("The PBX refused the registration."),
    "pbx_silent": _l("The PBX does not answer calls; checking it again."),
    "no_operator_on_line": _l("No operator is on line."),
    "no_free_operator": _l("All operators on line are busy."),
    "no_due_leads": _l("No leads are due."),
    "campaigns_paused": _l("The due leads are in paused campaigns."),
    "outside_calling_hours": _l("The due leads are outside calling hours."),
    "dial_format_wrong": _l("The dial format is wrong."),
    "no_sip_account": _l("The campaign has no SIP account."),
    "before_start_date": _l("The campaign's start date has not come yet."),
    "past_end_date": _l("The campaign's end date has passed."),
}
WARNING_TEXT = {
    "pbx_refuses_refer": _l(
        "The PBX refuses REFER: customers cannot be transferred to operators. "
        "Allow transfers for this SIP account on the PBX."
    ),
}


@dataclass(frozen=True)
class EngineState:
    running: bool
    dialing: bool = False
    reason: str = ""
    detail: str = ""
    warning: str = ""
    in_flight: int = 0
    #: {campaign id (text): (reason code, detail)} of the running campaigns that do not
    #: dial, as the engine publishes them in the `campaigns` field.
    campaigns: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: {SIP account id (text): its registration and keep-alive}, as the engine publishes
    #: them in the `accounts` field (engine/dialer.py `_accounts_state`).
    accounts: dict[str, dict] = field(default_factory=dict)


def engine_state(tenant_id: int) -> EngineState:
    connection = bus.client()
    if connection is None:
        return EngineState(running=False)
    try:
        raw = connection.hgetall(bus.keys(tenant_id).state)
    except redis.RedisError:
        return EngineState(running=False)
    state = {key.decode(): json.loads(value) for key, value in raw.items()}
    if not state or state.get("state") == "stopped":
        return EngineState(running=False)
    return EngineState(
        running=True,
        dialing=state.get("state") == "dialing",
        reason=str(REASON_TEXT.get(state.get("reason", ""), "")),
        detail=state.get("detail", ""),
        warning=str(WARNING_TEXT.get(state.get("warning", ""), "")),
        in_flight=int(state.get("in_flight", 0)),
        campaigns=_campaigns(state.get("campaigns")),
        accounts={
            str(key): value
            for key, value in (state.get("accounts") or {}).items()
            if isinstance(value, dict)
        }
        if isinstance(state.get("accounts"), dict)
        else {},
    )


def _campaigns(published: object) -> dict[str, tuple[str, str]]:
    """The engine's `campaigns` field, {"<id>": ["<code>", "<detail>"]}; anything else in
    it (an engine of another version) is left out."""
    if not isinstance(published, dict):
        return {}
    out = {}
    for campaign_id, reason in published.items():
        if isinstance(reason, list | tuple) and reason and isinstance(reason[0], str):
            detail = reason[1] if len(reason) > 1 and isinstance(reason[1], str) else ""
            out[str(campaign_id)] = (reason[0], detail)
    return out


def describe(state: EngineState, dialing_enabled: bool) -> str:
    """Whether and why the engine dials, in the reader's language (settings pages, live wall)."""
    if not dialing_enabled:
        return _("Automatic dialing is off.")
    if not state.running:
        return _("Automatic dialing is on; the engine is starting.")
    if state.dialing:
        return _("Dialing: %(count)s calls in progress.", count=state.in_flight)
    detail = f" ({state.detail})" if state.detail else ""
    return f"{_('Not dialing:')} {state.reason}{detail}"


def describe_campaign(state: EngineState, campaign_id: int, dialing_enabled: bool) -> str:
    """What the engine says of one campaign: its own reason when the engine published one
    for it, else what it says of the company (`describe`)."""
    published = state.campaigns.get(str(campaign_id))
    if not dialing_enabled or not state.running or published is None:
        return describe(state, dialing_enabled)
    code, detail = published
    reason = str(REASON_TEXT.get(code, code))
    detail = f" ({detail})" if detail else ""
    return f"{_('Not dialing:')} {reason}{detail}"


def describe_account(state: EngineState, account_id: int, now: float | None = None) -> str:
    """What the engine says of one SIP account: its registration and how the PBX answers
    the keep-alive OPTIONS (the SIP accounts page); "" when no running engine uses it."""
    account = state.accounts.get(str(account_id))
    if not state.running or account is None:
        return ""
    now = time.time() if now is None else now
    registration = account.get("registration")
    detail = str(account.get("detail") or "")
    if registration == "none":
        return _("Cannot reach the PBX: %(detail)s", detail=detail)
    if registration == "failed":
        return _("Registration failed: %(detail)s", detail=detail)
    silent_since = account.get("silent_since")
    if isinstance(silent_since, int | float):
        return _(
            "The PBX has not answered for %(seconds)d s; dialing waits until it does.",
            seconds=max(0, now - silent_since),
        )
    if registration != "registered":
        return _("Registering with the PBX.")
    answer_ms = account.get("answer_ms")
    answered_at = account.get("answered_at")
    if isinstance(answer_ms, int | float) and isinstance(answered_at, int | float):
        return _(
            "Registered. The PBX answered OPTIONS in %(ms)s ms, %(seconds)d s ago.",
            ms=format_decimal(answer_ms, format="#,##0.#"),
            seconds=max(0, now - answered_at),
        )
    return _("Registered.")
