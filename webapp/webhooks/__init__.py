"""Webhooks: each finished attempt POSTed to the tenant's endpoints, signed, with retries
(`delivery.py`). The page that keeps the endpoints is Settings → Webhooks
(webapp/settings/webhooks.py)."""
