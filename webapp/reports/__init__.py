"""Reports for a tenant's admins and supervisors: the call log with each call's timeline and
CSV export, the summary of a period, operators, when customers answer, failed transfers.
This package is the pages: views.py, call_log.py (the call log's query, timeline and CSV),
charts.py, templates. The figures they show are webapp/services/figures.py, kept by the
roll-ups of webapp/services/rollup.py and the on-line sessions of
webapp/services/sessions.py; what each figure means: docs/reports.md."""

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

from webapp.reports import views  # noqa: E402,F401
