"""Reports for a tenant's admins and supervisors: the call log with each call's timeline and
CSV export, the summary of a period, operators, when customers answer, failed transfers.
Figures in webapp/services/figures.py, roll-ups in webapp/services/rollup.py, on-line
sessions in webapp/services/sessions.py; what each figure means: docs/reports.md."""

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

from webapp.reports import views  # noqa: E402,F401
