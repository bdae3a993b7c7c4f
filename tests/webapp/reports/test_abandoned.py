"""Abandoned calls of both kinds (docs/reports.md): "abandoned, hung up" (`no_free_operator`)
and "abandoned, sent to the fallback" (`sent_to_fallback`) are shown apart in the summary,
the call's page and the live wall, and both count in the abandon rate, the one the engine's
pacing reads (`DialingStore.abandon_counts`) included."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.webapp.live.test_views import add_attempt
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox


def figure(page: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', page).group(1)


def test_both_kinds_of_abandoned_calls_are_shown_apart_and_counted_together(
    app, client, auth, tenant_a, tenant_b, database_url
):
    now = datetime.now(UTC)
    add_attempt(app, tenant_a, outcome="answered", answer_at=now, transfer_result="succeeded")
    add_attempt(app, tenant_a, outcome="technical_error", detail="no_free_operator", answer_at=now)
    for _ in range(2):
        add_attempt(
            app,
            tenant_a,
            outcome="technical_error",
            detail="sent_to_fallback",
            answer_at=now,
            refer_to="sip:700@pbx",
            transfer_result="succeeded",
        )
    add_attempt(app, tenant_b, outcome="technical_error", detail="sent_to_fallback", answer_at=now)

    auth.login(tenant_a.admin_email)
    page = client.get("/reports/").get_data(as_text=True)
    assert (figure(page, "no_free_operator"), figure(page, "sent_to_fallback")) == ("1", "2")
    assert figure(page, "picked_up") == "4"
    assert figure(page, "technical_error") == "0"  # abandoned calls are counted apart
    assert figure(page, "abandon_rate") == "75.0 %"  # 3 of 4
    assert "Abandoned, sent to the fallback" in page and "Abandoned, hung up" in page
    assert "no free operators: sent to the fallback" in page  # the details' table
    client.get("/lang/ru")
    page = client.get("/reports/").get_data(as_text=True)
    assert "Брошено, переведено на резервный номер" in page and "Брошено, трубка положена" in page

    state = client.get("/live/state").get_json()
    assert state["today"]["abandoned"] == 3
    wall = client.get("/live/").get_data(as_text=True)  # Russian, as chosen above
    assert "Брошено (трубка положена или переведено на резервный номер)" in wall

    store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY))
    try:
        assert store.abandon_counts(tenant_a.id, now - timedelta(hours=1)) == (4, 3)
    finally:
        store.close()
