"""The tenant's do-not-call list through the API: numbers and prefixes never dialed."""

from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.api.common import check_query, find, json_body, json_object, page, page_args
from webapp.api.errors import invalid
from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import DoNotCall
from webapp.services.leads import LeadError, add_do_not_call, parse_do_not_call
from webapp.services.shapes import iso
from webapp.tenancy import current_tenant, scoped

NOTE_LENGTH = 200


def entry_json(entry: DoNotCall) -> dict:
    return {
        "id": entry.id,
        "number": entry.number,
        "prefix": entry.prefix,
        "note": entry.note,
        "created_at": iso(entry.created_at),
    }


@bp.get("/do-not-call")
def list_do_not_call():
    """Newest first, paged like the leads."""
    check_query(("limit", "cursor"))
    limit, cursor = page_args()
    query = scoped(DoNotCall)
    if cursor is not None:
        query = query.where(DoNotCall.id < cursor)
    rows = db.session.scalars(query.order_by(DoNotCall.id.desc()).limit(limit + 1)).all()
    entries, next_cursor = page(list(rows), limit)
    return jsonify({"entries": [entry_json(e) for e in entries], "next_cursor": next_cursor})


@bp.post("/do-not-call")
def add_to_do_not_call():
    """A number (`+79161234567`, or as the tenant's customers write it) or a prefix (`+7916*`).
    201 when added; 200 when the list already has it."""
    data = json_object(json_body(), ("number", "note"), "The body")
    text, note = data.get("number"), data.get("note", "")
    if not isinstance(text, str):
        raise invalid("number", "number must be a string: a phone number or a prefix like +7916*.")
    if not isinstance(note, str) or len(note) > NOTE_LENGTH:
        raise invalid("note", f"note must be a string of at most {NOTE_LENGTH} characters.")
    tenant = current_tenant()
    try:
        number, prefix = parse_do_not_call(tenant, text)
    except LeadError as error:
        raise invalid("number", error.message) from None
    known = db.session.scalar(
        scoped(DoNotCall).where(DoNotCall.number == number, DoNotCall.prefix == prefix)
    )
    entry = known or add_do_not_call(tenant, text, note)
    response = jsonify(entry_json(entry))
    if known is None:
        response.status_code = 201
    return response


@bp.delete("/do-not-call/<int:entry_id>")
def remove_from_do_not_call(entry_id: int):
    entry = find(DoNotCall, entry_id, "do-not-call entry")
    tenant_id = entry.tenant_id
    db.session.delete(entry)
    db.session.commit()
    wake_engine(tenant_id, "do_not_call")
    return "", 204
