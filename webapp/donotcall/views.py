from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from webapp.bus import wake_engine
from webapp.donotcall import bp
from webapp.donotcall.forms import MAX_LINES, BulkForm, EntryForm
from webapp.extensions import db
from webapp.models import DoNotCall
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.leads import LeadError, add_do_not_call
from webapp.tenancy import current_tenant, get_or_404, scoped

PAGE_SIZE = 50
_NUMBER = re.compile(r"\+?[0-9]{1,15}\*?\Z")
#: Where the note starts on a pasted line.
_NOTE_SEPARATOR = re.compile(r"[\t;,]")


def _shown(entry: DoNotCall) -> str:
    return entry.number + ("*" if entry.prefix else "")


def _page(entry_form: EntryForm, bulk_form: BulkForm, bad_lines=()):
    """The list (newest first, paged by id, searchable by number or note) and the forms."""
    text = request.args.get("q", "").strip()[:100]
    before = request.args.get("before", type=int)
    query = scoped(DoNotCall)
    if text:
        compact = re.sub(r"[\s\-().]", "", text)
        if _NUMBER.match(compact):
            digits = compact.rstrip("*").lstrip("+")
            query = query.where(DoNotCall.number.startswith("+" + digits, autoescape=True))
        else:
            query = query.where(DoNotCall.note.icontains(text, autoescape=True))
    if before is not None:
        query = query.where(DoNotCall.id < before)
    entries = db.session.scalars(query.order_by(DoNotCall.id.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return render_template(
        "donotcall/index.html",
        entries=entries,
        shown=_shown,
        q=text,
        next_before=entries[-1].id if more else None,
        first_page=before is None,
        form=entry_form,
        bulk=bulk_form,
        bad_lines=bad_lines,
        editable=can_change(),
    )


@bp.get("/")
@tenant_reader
def index():
    return _page(EntryForm(formdata=None), BulkForm(formdata=None))


@bp.post("/add")
@tenant_writer
def add():
    form = EntryForm()
    if form.validate_on_submit():
        try:
            note = (form.note.data or "").strip()
            entry = add_do_not_call(current_tenant(), form.number.data, note)
        except LeadError as error:
            form.number.errors.append(error.message)
        else:
            flash(_("%(number)s is on the do-not-call list.", number=_shown(entry)), "success")
            return redirect(url_for("donotcall.index"))
    return _page(form, BulkForm(formdata=None))


@bp.post("/bulk")
@tenant_writer
def bulk():
    """One entry a line, an optional note after it; good lines are added, bad ones come
    back in the box with their reason, to be fixed and sent again."""
    form = BulkForm()
    if not form.validate_on_submit():
        return _page(EntryForm(formdata=None), form)
    lines = [line.strip() for line in form.entries.data.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > MAX_LINES:
        form.entries.errors.append(_("Paste at most %(count)s lines at once.", count=MAX_LINES))
        return _page(EntryForm(formdata=None), form)
    tenant = current_tenant()
    added, bad = 0, []
    for number, line in enumerate(lines, start=1):
        text, *own_note = _NOTE_SEPARATOR.split(line, maxsplit=1)
        note = "".join(own_note).strip() or (form.note.data or "").strip()
        try:
            add_do_not_call(tenant, text, note[:200])
            added += 1
        except LeadError as error:
            bad.append((number, line, error.message))
    if added:
        flash(_("%(count)s entries are on the do-not-call list.", count=added), "success")
    if not bad:
        return redirect(url_for("donotcall.index"))
    form.entries.data = "\n".join(line for _n, line, _m in bad)
    return _page(EntryForm(formdata=None), form, bad_lines=bad)


@bp.post("/<int:entry_id>/delete")
@tenant_writer
def delete(entry_id: int):
    entry = get_or_404(DoNotCall, entry_id)
    db.session.delete(entry)
    db.session.commit()
    wake_engine(entry.tenant_id, "do_not_call")
    flash(_("%(number)s is off the do-not-call list.", number=_shown(entry)), "success")
    return redirect(url_for("donotcall.index"))
