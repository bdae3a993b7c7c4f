from engine.dialer import REASONS
from webapp.services.engine_state import REASON_TEXT


def test_the_portal_words_every_reason_the_engine_gives_for_not_dialing():
    assert set(REASON_TEXT) == set(REASONS)
