from engine.dialer import REASONS
from webapp.services.engine_state import REASON_TEXT

#: A campaign's own reasons, which the engine gives per campaign.
CAMPAIGN_REASONS = {"no_sip_account", "before_start_date", "past_end_date"}


def test_the_portal_words_every_reason_the_engine_gives_for_not_dialing():
    assert set(REASON_TEXT) == set(REASONS) | CAMPAIGN_REASONS
