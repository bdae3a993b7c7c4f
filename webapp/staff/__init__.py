"""Platform staff (billing / ops). A placeholder: reports across tenants come later."""

from flask import Blueprint, render_template

from webapp.models import Role
from webapp.roles import role_required

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")


@bp.get("/")
@role_required(Role.STAFF)
def index():
    return render_template("staff/index.html")
