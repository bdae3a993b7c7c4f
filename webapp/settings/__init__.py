"""Company settings: the SIP account, dial and REFER formats, and how calls are made."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")

from webapp.settings import api_access, views, webhooks  # noqa: E402,F401


@bp.context_processor
def _engine_state() -> dict:
    """Every settings page says what the tenant's engine is doing."""
    from webapp.services.engine_state import describe, engine_state
    from webapp.tenancy import current_tenant

    def engine() -> dict:
        tenant = current_tenant()
        state = engine_state(tenant.id)
        dialing = bool(tenant.dialing_enabled and tenant.sip_host)
        return {"text": describe(state, dialing), "warning": state.warning}

    return {"engine_state": engine}
