"""Webhooks: each finished attempt POSTed to the tenant's endpoints, signed, with retries
(`delivery.py`: jobs, not a blueprint). The outbox the engine writes deliveries to is
webapp/services/webhooks.py; the page that keeps the endpoints is Settings → Webhooks
(webapp/settings/webhooks.py)."""
