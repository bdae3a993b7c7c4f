"""Company settings: the company itself (time zone, region, the dialing switch), its SIP
accounts with their formats and checks, API access and webhooks. The dialing rules are each
campaign's (webapp/campaigns/)."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")

from webapp.settings import api_access, sip_accounts, views, webhooks  # noqa: E402,F401


@bp.context_processor
def _engine_state() -> dict:
    """Every settings page says what the tenant's engine is doing."""
    from webapp.services.engine_state import describe, engine_state
    from webapp.services.sip_accounts import dialing_on
    from webapp.tenancy import current_tenant

    def engine() -> dict:
        tenant = current_tenant()
        state = engine_state(tenant.id)
        return {"text": describe(state, dialing_on(tenant)), "warning": state.warning}

    return {"engine_state": engine}
