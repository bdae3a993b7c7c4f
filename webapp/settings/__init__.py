"""Company settings: the SIP account, dial and REFER formats, and how calls are made."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")

from webapp.settings import api_access, views, webhooks  # noqa: E402,F401


@bp.context_processor
def _engine_state() -> dict:
    """Every settings page says what the tenant's engine is doing."""
    from webapp.services.engine_state import EngineState, engine_state
    from webapp.tenancy import current_tenant

    tenant = current_tenant()
    return {
        "engine_state": lambda: engine_state(tenant.id) if tenant else EngineState(False),
        "tenant_dialing": bool(tenant and tenant.dialing_enabled and tenant.sip_host),
    }
