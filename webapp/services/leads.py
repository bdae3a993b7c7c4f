"""Leads coming in (API, CSV import, the portal) and the do-not-call list.

One way in for every source, so a lead is checked, normalised and announced to the engine
the same way whoever creates it: the number is read with `phonenumbers` (the tenant's
region for numbers written without a country code) and stored in E.164; the customer's
time zone comes from the lead, else from the number when it has exactly one zone, else it
stays empty (the tenant's zone applies); a lead with a CRM id already known is not created
twice. Errors are `LeadError` with a message for the person who sent the lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_time_zones
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import DoNotCall, Lead, LeadStatus, Tenant


class LeadError(ValueError):
    """A lead (or a do-not-call entry) that cannot be taken; `field` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_phone(text: str, region: str) -> str:
    """E.164 (`+79161234567`) from what a person or a CRM wrote, or LeadError."""
    raw = (text or "").strip()
    if not raw:
        raise LeadError("phone", "The phone number is empty.")
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        raise LeadError("phone", f"{raw!r} is not a phone number.") from None
    if not phonenumbers.is_possible_number(number):
        raise LeadError(
            "phone",
            f"{raw!r} cannot be a phone number: wrong length for "
            f"+{number.country_code}. Write it with its country code, e.g. +12125551234.",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def zone_of_number(phone: str) -> str | None:
    """The customer's time zone when the number tells it unambiguously."""
    zones = phone_time_zones.time_zones_for_number(phonenumbers.parse(phone))
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None


def check_time_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a long name
        raise LeadError(
            "time_zone", f"{name!r} is not a time zone; use an IANA name like Europe/Moscow."
        ) from None
    return name


@dataclass
class NewLead:
    """What a source says about a lead; only `phone` is required."""

    phone: str
    name: str = ""
    external_id: str | None = None
    card: dict[str, Any] | None = None
    priority: int = 0
    time_zone: str | None = None
    #: The campaign it goes to, already checked (services.campaigns.campaign_for_leads);
    #: None: the tenant's default campaign.
    campaign_id: int | None = None
    #: A callback promised to the customer (e.g. a slot chosen on the CRM's web form): the
    #: lead's first call is then, before new leads and retries (`check_call_at`).
    call_at: datetime | None = None


#: How far ahead a callback may be promised.
CALL_AT_HORIZON = timedelta(days=365)


def check_call_at(at: datetime, now: datetime | None = None) -> datetime:
    """A callback time in UTC, or LeadError: one in the past, or more than a year ahead."""
    now = now or datetime.now(UTC)
    at = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    if at < now - timedelta(minutes=1):  # a minute's leeway for the sender's clock
        raise LeadError("call_at", f"The callback time {at.isoformat()} is in the past.")
    if at > now + CALL_AT_HORIZON:
        raise LeadError("call_at", "The callback time is more than a year ahead.")
    return at


def schedule_callback(lead: Lead, at: datetime | None, operator_id: int | None = None) -> None:
    """Promise the customer a callback at `at` (checked: `check_call_at`; None: take the
    promise back, the lead stays where it is): the lead is dialed then, before new leads and
    retries, whatever its attempts, by `operator_id` if given (a personal callback). Not
    for a lead on the do-not-call list, nor one in a call now (LeadError). Commits and
    wakes the engine."""
    if lead.status == LeadStatus.DO_NOT_CALL.value:
        raise LeadError("call_at", "The lead's number is on the do-not-call list.")
    if lead.status == LeadStatus.DIALING.value:
        raise LeadError("call_at", "The lead is being called now; try again after the call.")
    if at is None:
        lead.callback_at = lead.callback_operator_id = None
    else:
        lead.callback_at = lead.next_attempt_at = check_call_at(at)
        lead.callback_operator_id = operator_id
        if lead.status != LeadStatus.NEW.value:
            lead.status = LeadStatus.RETRY.value
    db.session.commit()
    wake_engine(lead.tenant_id, "new_lead")


def prepare(tenant: Tenant, new: NewLead) -> Lead:
    """A checked, normalised Lead (not yet added to the session), or LeadError."""
    phone = normalize_phone(new.phone, tenant.default_phone_region)
    if len(new.name or "") > 200:
        raise LeadError("name", "The name is longer than 200 characters.")
    if new.external_id is not None and not 0 < len(new.external_id) <= 128:
        raise LeadError("external_id", "The CRM id must have 1 to 128 characters.")
    if new.card is not None and not isinstance(new.card, dict):
        raise LeadError("card", "The card must be a set of named fields.")
    if not isinstance(new.priority, int) or not -1000 <= new.priority <= 1000:
        raise LeadError("priority", "The priority must be a whole number from -1000 to 1000.")
    zone = check_time_zone(new.time_zone) or zone_of_number(phone)
    call_at = check_call_at(new.call_at) if new.call_at is not None else None
    return Lead(
        tenant_id=tenant.id,
        phone=phone,
        name=(new.name or "").strip(),
        external_id=new.external_id,
        card=new.card or {},
        priority=new.priority,
        time_zone=zone,
        campaign_id=new.campaign_id,
        status=LeadStatus.NEW.value,
        attempts=0,
        next_attempt_at=call_at,
        callback_at=call_at,
    )


def create_lead(tenant: Tenant, new: NewLead, *, commit: bool = True) -> tuple[Lead, bool]:
    """Create a lead, or return the one with the same CRM id; (lead, created).

    On commit the tenant's engine is woken, so a new lead is dialed at once when an
    operator is free."""
    if new.external_id is not None:
        existing = db.session.scalar(
            select(Lead).where(Lead.tenant_id == tenant.id, Lead.external_id == new.external_id)
        )
        if existing is not None:
            return existing, False
    lead = prepare(tenant, new)
    db.session.add(lead)
    if commit:
        db.session.commit()
        wake_engine(tenant.id, "new_lead")
    return lead, True


# --- the do-not-call list ------------------------------------------------------------------


def parse_do_not_call(tenant: Tenant, text: str) -> tuple[str, bool]:
    """A do-not-call entry as a person writes it: a number, or a prefix ending in `*`
    (`+7916*`). Returns (E.164 number or prefix, is_prefix)."""
    raw = (text or "").strip()
    if raw.endswith("*"):
        digits = raw[:-1].strip().replace(" ", "").replace("-", "")
        if not (digits.startswith("+") and digits[1:].isdigit() and 1 <= len(digits) - 1 <= 14):
            raise LeadError(
                "number", f"{raw!r} is not a prefix: write + and the first digits, e.g. +7916*."
            )
        return digits, True
    return normalize_phone(raw, tenant.default_phone_region), False


def add_do_not_call(tenant: Tenant, text: str, note: str = "") -> DoNotCall:
    number, prefix = parse_do_not_call(tenant, text)
    entry, added = put_on_do_not_call(tenant.id, number, prefix, note)
    if added:
        db.session.commit()
        wake_engine(tenant.id, "do_not_call")
    return entry


def put_on_do_not_call(
    tenant_id: int, number: str, prefix: bool = False, note: str = ""
) -> tuple[DoNotCall, bool]:
    """The entry for an E.164 number (or prefix), added to the session when it is not on the
    list yet; (entry, added). The caller commits and wakes the engine (`do_not_call`)."""
    known = select(DoNotCall).where(
        DoNotCall.tenant_id == tenant_id, DoNotCall.number == number, DoNotCall.prefix == prefix
    )
    entry = db.session.scalar(known)
    if entry is not None:
        return entry, False
    entry = DoNotCall(tenant_id=tenant_id, number=number, prefix=prefix, note=note[:200])
    try:
        with db.session.begin_nested():  # a savepoint: someone may add the number meanwhile
            db.session.add(entry)
    except IntegrityError:  # they did (two operators marking one number wrong at once)
        return db.session.scalars(known).one(), False
    return entry, True
