"""The CSV import pages: upload, map and preview, then the job's progress and its report.
Only admins import."""

from __future__ import annotations

from flask import abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectField
from wtforms.fields.choices import SelectChoice

from webapp.extensions import db
from webapp.jobs import watched
from webapp.leads import bp, imports
from webapp.models import Campaign
from webapp.roles import tenant_writer
from webapp.services.campaigns import (
    CampaignError,
    campaign_for_leads,
    campaigns_of,
    default_campaign,
)
from webapp.tenancy import current_tenant, current_tenant_id, scoped

#: The most columns a file may have (a wider one is surely not a list of leads).
MAX_COLUMNS = 60
TARGET_LABELS = {
    "phone": _l("Phone number"),
    "name": _l("Name"),
    "external_id": _l("CRM id"),
    "priority": _l("Priority"),
    "time_zone": _l("Time zone"),
    "card": _l("Card field"),
    "": _l("Skip"),
}
ENCODINGS = {"utf-8-sig": "UTF-8", "cp1251": "Windows-1251", "utf-16": "UTF-16"}
FIELD_LABELS = {
    "phone": _l("Phone number"),
    "name": _l("Name"),
    "external_id": _l("CRM id"),
    "priority": _l("Priority"),
    "time_zone": _l("Time zone"),
    "card": _l("Card"),
}


class UploadForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        description=_l(
            "UTF-8 or Windows-1251 (what Excel saves as CSV), columns separated by commas "
            "or semicolons."
        ),
    )


@bp.route("/import", methods=["GET", "POST"])
@tenant_writer
def import_upload():
    # The form around the file is small; a larger body is refused before it is read.
    request.max_content_length = imports.max_bytes() + 64 * 1024
    try:
        form = UploadForm()
        submitted = form.validate_on_submit()
    except RequestEntityTooLarge:
        form, submitted = UploadForm(formdata=None), False
        form.file.errors = [str(imports.too_large())]
    if submitted:
        # werkzeug has spooled the file to a temporary file; it is copied from there a
        # megabyte at a time, never read whole into memory.
        try:
            upload = imports.save_upload(
                current_tenant_id(), form.file.data.filename, form.file.data.stream
            )
        except imports.ImportFileError as error:
            form.file.errors.append(str(error))
        else:
            return redirect(url_for("leads.import_mapping", upload_id=upload.token))
    return render_template("leads/import_upload.html", form=form)


def _mapping_form(names: list[str], guessed: list[str]) -> FlaskForm:
    tenant = current_tenant()

    class MappingForm(FlaskForm):
        header = BooleanField(_l("The first row holds the column names"), default=True)
        # Archived campaigns take no new leads: they are not offered.
        campaign = SelectField(
            _l("Campaign"),
            coerce=int,
            choices=[SelectChoice(c.id, c.name) for c in campaigns_of(tenant, archived=False)],
            default=default_campaign(tenant).id,
            description=_l("The file's leads go to this campaign."),
        )

    choices = [SelectChoice(value, label) for value, label in TARGET_LABELS.items()]
    for i, name in enumerate(names):
        setattr(MappingForm, f"col{i}", SelectField(name, choices=choices, default=guessed[i]))
    return MappingForm()


def _mapping_errors(mapping: list[str]) -> list[str]:
    errors = []
    if "phone" not in mapping:
        errors.append(_("Choose the column that holds the phone number."))
    for target in imports.SINGLE:
        if mapping.count(target) > 1:
            errors.append(
                _("Only one column can be the %(field)s.", field=TARGET_LABELS[target].lower())
            )
    return errors


@bp.route("/import/<upload_id>", methods=["GET", "POST"])
@tenant_writer
def import_mapping(upload_id: str):
    tenant = current_tenant()
    upload = imports.find_upload(tenant.id, upload_id)
    if upload is None:
        abort(404)
    if upload.job_id:  # already started (a second click, the back button)
        return redirect(url_for("leads.import_job", job_id=upload.job_id))
    rows = upload.head()  # the first rows only: a 50 MB file is not read for this page
    header = request.form.get("header") == "y" if request.method == "POST" else True
    names = imports.column_names(rows, header)[:MAX_COLUMNS]
    form = _mapping_form(names, imports.guess_mapping(rows, header))
    columns = [form[f"col{i}"] for i in range(len(names))]
    mapping = [column.data or "" for column in columns]
    errors = _mapping_errors(mapping) if form.is_submitted() else []
    if form.validate_on_submit() and not errors and "start" in request.form:
        try:  # (archived since the page was shown)
            campaign = campaign_for_leads(tenant, form.campaign.data)
        except CampaignError as error:
            form.campaign.errors.append(error.message)
            campaign = None
    else:
        campaign = None
    if campaign is not None:
        job = watched.start(
            "import",
            tenant.id,
            imports.import_leads,
            tenant.id,
            upload_id,
            mapping,
            header,
            campaign.id,
            timeout=3600,
            meta={"campaign_id": campaign.id},
        )
        imports.mark_started(upload, job.id)
        return redirect(url_for("leads.import_job", job_id=job.id))
    data_rows = upload.rows - (1 if header else 0)
    return render_template(
        "leads/import_mapping.html",
        form=form,
        upload=upload,
        columns=columns,
        errors=errors,
        rows=data_rows,
        preview=imports.preview(tenant, rows, mapping, header) if "phone" in mapping else [],
        encoding=ENCODINGS[upload.encoding],
        delimiter={",": _("commas"), ";": _("semicolons"), "\t": _("tabs")}[upload.delimiter],
        FIELD_LABELS=FIELD_LABELS,
    )


@bp.get("/import/jobs/<job_id>")
@tenant_writer
def import_job(job_id: str):
    job = watched.find_or_404(job_id, "import")
    state = watched.state(job)
    campaign_id = job.meta.get("campaign_id")
    campaign = (
        db.session.scalar(scoped(Campaign).where(Campaign.id == campaign_id))
        if campaign_id is not None
        else None
    )
    return render_template(
        "leads/import_job.html",
        job=job,
        state=state,
        campaign=campaign,
        progress=job.meta.get("progress") or {"done": 0, "total": 0},
        result=job.return_value() if state == "done" else None,
        FIELD_LABELS=FIELD_LABELS,
    )


@bp.get("/import/jobs/<job_id>/status")
@tenant_writer
def import_status(job_id: str):
    """What the progress bar asks for while the job runs."""
    job = watched.find_or_404(job_id, "import")
    progress = job.meta.get("progress") or {"done": 0, "total": 0}
    return jsonify(state=watched.state(job), **progress)
