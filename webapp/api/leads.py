"""Leads through the API: create (one or a thousand at once), read, list, cancel, attempts,
and a callback promised to the customer (`call_at`, on a new lead or an existing one).

Leads come in through webapp/services/leads.py, like from every other source; this module
only reads JSON, says precisely what is wrong with it, and writes JSON back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from types import NoneType
from typing import Any
from zoneinfo import available_timezones

from flask import jsonify, request, url_for
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from webapp.api import bp
from webapp.api.common import (
    check_query,
    find,
    json_body,
    json_object,
    page,
    page_args,
    time_arg,
)
from webapp.api.errors import ApiError, invalid
from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, LeadStatus
from webapp.services.campaigns import CampaignError, campaign_for_leads, find_campaign
from webapp.services.leads import (
    LeadError,
    NewLead,
    check_call_at,
    create_lead,
    normalize_phone,
    schedule_callback,
)
from webapp.services.shapes import attempt_json, latest_results, lead_json
from webapp.tenancy import current_tenant, scoped

BULK_LIMIT = 1000
#: The largest card taken, as UTF-8 JSON.
CARD_BYTES = 64 * 1024
#: A lead's fields as the API takes them: name -> (accepted JSON types, how to say it).
LEAD_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "phone": ((str,), "a string"),
    "name": ((str,), "a string"),
    "external_id": ((str, NoneType), "a string or null"),
    "card": ((dict, NoneType), "an object or null"),
    "priority": ((int,), "a whole number"),
    "time_zone": ((str, NoneType), "a string or null"),
    "campaign": ((int, str, NoneType), "a campaign's id (a number) or key (a string), or null"),
    "call_at": ((str, NoneType), "a date-time string or null"),
}
#: A finished lead cannot be cancelled any more.
FINISHED = (LeadStatus.REACHED.value, LeadStatus.EXHAUSTED.value)


def read_new_lead(value: Any, campaigns: dict | None = None) -> NewLead:
    """A NewLead from JSON, or a 422 naming the field. `campaigns` remembers the campaigns
    named so far in the request (a bulk names the same few a thousand times)."""
    data = dict(json_object(value, LEAD_FIELDS, "A lead"))
    if "phone" not in data:
        raise invalid("phone", "The phone number is required.")
    for name, field_value in data.items():
        types, words = LEAD_FIELDS[name]
        if isinstance(field_value, bool) or not isinstance(field_value, types):
            raise invalid(name, f"{name} must be {words}.")
    if data.get("card") is not None:
        _check_card(data["card"])
    if data.get("time_zone") and data["time_zone"] not in _time_zones():
        raise invalid(
            "time_zone",
            f"{data['time_zone']!r} is not a time zone; use an IANA name like Europe/Moscow.",
        )
    call_at = _call_at(data.pop("call_at", None))
    campaign = _campaign_for_leads(
        data.pop("campaign", None), {} if campaigns is None else campaigns
    )
    return NewLead(**data, campaign_id=campaign.id, call_at=call_at)


def _call_at(text: str | None) -> datetime | None:
    """A callback time as the API takes it: ISO 8601, UTC when it names no offset; in the
    past or more than a year ahead: 422 with the reason."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return check_call_at(value.astimezone(UTC))
    except (ValueError, OverflowError) as error:
        if isinstance(error, LeadError):
            raise invalid("call_at", error.message) from None
        raise invalid(
            "call_at", f"{text!r} is not a date-time; write e.g. 2026-05-01T18:00:00+03:00."
        ) from None


def _campaign_for_leads(ref: int | str | None, known: dict) -> Campaign:
    """The campaign a lead goes to (the default one without `campaign`); 422 for one the
    tenant does not have (another tenant's included) or that is archived."""
    key = (type(ref), ref)
    if key not in known:
        try:
            known[key] = campaign_for_leads(current_tenant(), ref)
        except CampaignError as error:
            known[key] = error
    if isinstance(known[key], CampaignError):
        raise invalid("campaign", known[key].message)
    return known[key]


def _check_card(card: dict) -> None:
    try:
        size = len(json.dumps(card, ensure_ascii=False).encode())
    except UnicodeEncodeError:
        raise invalid("card", "The card holds text that is not valid Unicode.") from None
    if size > CARD_BYTES:
        raise invalid("card", f"The card is larger than {CARD_BYTES // 1024} KiB.")


@cache
def _time_zones() -> frozenset[str]:
    """IANA names (zoneinfo would also open a directory like `America`, and fail)."""
    return frozenset(available_timezones())


def take_lead(
    value: Any, *, commit: bool = True, campaigns: dict | None = None
) -> tuple[Lead, bool]:
    """create_lead() from JSON, with its errors as 422s; (lead, created). A lead already
    known by its external_id is answered as it is, in its own campaign."""
    new = read_new_lead(value, campaigns)
    try:
        return create_lead(current_tenant(), new, commit=commit)
    except LeadError as error:
        raise invalid(error.field, error.message) from None


def _by_external_id(external_id: str | None) -> Lead | None:
    if external_id is None:
        return None
    return db.session.scalar(scoped(Lead).where(Lead.external_id == external_id))


@bp.post("/leads")
def new_lead():
    """201 with a new lead; 200 with the lead already known by this external_id."""
    body = json_body()
    try:
        lead, created = take_lead(body)
    except IntegrityError:  # a concurrent request brought the same external_id first
        db.session.rollback()
        lead, created = _by_external_id(body.get("external_id")), False
        if lead is None:
            raise
    response = jsonify(lead_json(lead))
    if created:
        response.status_code = 201
        response.headers["Location"] = url_for("api.get_lead", lead_id=lead.id)
    return response


@bp.post("/leads/bulk")
def new_leads():
    """Every lead is answered by its index: created, existing, or failed with the reason.
    The good ones are created even when others fail; nothing is dropped without a word."""
    body = json_object(json_body(), ("leads",), "The body")
    items = body.get("leads")
    if not isinstance(items, list) or not 1 <= len(items) <= BULK_LIMIT:
        raise invalid("leads", f"leads must be a list of 1 to {BULK_LIMIT} leads.")
    try:
        results = _create_many(items)
    except IntegrityError:  # a concurrent request took an external_id: a second pass finds it
        db.session.rollback()
        results = _create_many(items)
    counts = {status: 0 for status in ("created", "existing", "failed")}
    for result in results:
        counts[result["status"]] += 1
    db.session.commit()
    if counts["created"]:
        wake_engine(current_tenant().id, "new_lead")
    return jsonify({**counts, "results": results})


def _create_many(items: list) -> list[dict]:
    outcomes: list[tuple[int, Lead | None, bool, dict | None]] = []
    campaigns: dict = {}
    for index, item in enumerate(items):
        try:
            lead, created = take_lead(item, commit=False, campaigns=campaigns)
        except ApiError as error:
            outcomes.append((index, None, False, error.body()["error"]))
        else:
            outcomes.append((index, lead, created, None))
    db.session.flush()  # ids for the new leads; a lost race on an external_id raises here
    latest = latest_results([lead for _, lead, _, _ in outcomes if lead is not None])
    results = []
    for index, lead, created, error in outcomes:
        if lead is None:
            results.append({"index": index, "status": "failed", "error": error})
        else:
            status = "created" if created else "existing"
            results.append({"index": index, "status": status, "lead": lead_json(lead, latest)})
    return results


LIST_PARAMETERS = (
    "campaign",
    "status",
    "phone",
    "external_id",
    "created_from",
    "created_to",
    "next_attempt_from",
    "next_attempt_to",
    "limit",
    "cursor",
)


@bp.get("/leads")
def list_leads():
    """Newest first; `next_cursor` asks for the next page (keyset paging on the id)."""
    check_query(LIST_PARAMETERS)
    args = request.args
    query = scoped(Lead)
    if "campaign" in args:
        try:
            campaign = find_campaign(current_tenant(), args["campaign"])
        except CampaignError as error:
            raise invalid("campaign", error.message) from None
        query = query.where(Lead.campaign_id == campaign.id)
    if "status" in args:
        if args["status"] not in {status.value for status in LeadStatus}:
            known = ", ".join(LeadStatus)
            raise invalid("status", f"{args['status']!r} is not a status; one of: {known}.")
        query = query.where(Lead.status == args["status"])
    if "phone" in args:
        try:
            phone = normalize_phone(args["phone"], current_tenant().default_phone_region)
        except LeadError as error:
            raise invalid("phone", error.message) from None
        query = query.where(Lead.phone == phone)
    if "external_id" in args:
        query = query.where(Lead.external_id == args["external_id"])
    for name, column in (("created", Lead.created_at), ("next_attempt", Lead.next_attempt_at)):
        start, end = time_arg(f"{name}_from"), time_arg(f"{name}_to")
        if start is not None:
            query = query.where(column >= start)
        if end is not None:
            query = query.where(column < end)
    limit, cursor = page_args()
    if cursor is not None:
        query = query.where(Lead.id < cursor)
    rows = db.session.scalars(query.order_by(Lead.id.desc()).limit(limit + 1)).all()
    leads, next_cursor = page(list(rows), limit)
    latest = latest_results(leads)
    return jsonify(
        {"leads": [lead_json(lead, latest) for lead in leads], "next_cursor": next_cursor}
    )


@bp.get("/leads/<int:lead_id>")
def get_lead(lead_id: int):
    return jsonify(lead_json(find(Lead, lead_id, "lead")))


@bp.post("/leads/<int:lead_id>/cancel")
def cancel_lead(lead_id: int):
    """The engine stops calling the lead. Cancelling twice is fine; a lead already reached
    or exhausted stays as it is (409)."""
    lead = find(Lead, lead_id, "lead")
    cancelled = LeadStatus.CANCELLED.value
    # One conditional UPDATE: an engine reaching the lead at this moment wins cleanly.
    db.session.execute(
        update(Lead)
        .where(Lead.tenant_id == lead.tenant_id, Lead.id == lead.id)
        .where(Lead.status.not_in((*FINISHED, cancelled)))
        .values(status=cancelled, next_attempt_at=None)
    )
    db.session.commit()
    db.session.refresh(lead)
    if lead.status in FINISHED:
        raise ApiError(
            409, f"The lead is already {lead.status}; it cannot be cancelled.", code="lead_finished"
        )
    return jsonify(lead_json(lead))


@bp.patch("/leads/<int:lead_id>")
def update_lead(lead_id: int):
    """Promise the customer a callback (`call_at`), or take it back (`call_at`: null). The
    lead is dialed then, before new leads and retries, even if it used its attempts."""
    lead = find(Lead, lead_id, "lead")
    body = json_object(json_body(), ("call_at",), "The body")
    if "call_at" not in body:
        raise invalid("call_at", "Nothing to change: send call_at.")
    if not isinstance(body["call_at"], (str, NoneType)):
        raise invalid("call_at", "call_at must be a date-time string or null.")
    at = _call_at(body["call_at"])
    try:
        schedule_callback(lead, at)
    except LeadError as error:
        db.session.rollback()
        if lead.status == LeadStatus.DIALING.value:
            raise ApiError(409, error.message, code="lead_dialing") from None
        raise invalid(error.field, error.message) from None
    return jsonify(lead_json(lead))


@bp.get("/leads/<int:lead_id>/attempts")
def list_attempts(lead_id: int):
    """Every attempt of the lead, oldest first."""
    lead = find(Lead, lead_id, "lead")
    rows = db.session.scalars(
        scoped(Attempt).where(Attempt.lead_id == lead.id).order_by(Attempt.id)
    )
    return jsonify({"attempts": [attempt_json(attempt) for attempt in rows]})
