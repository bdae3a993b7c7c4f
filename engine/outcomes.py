"""How an attempt ended, in the product's words: one vocabulary for the engine, the database
and the portal (docs/sip.md has the SIP behind each word)."""

from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    TECHNICAL_ERROR = "technical_error"


class TransferResult(StrEnum):
    SUCCEEDED = "succeeded"  # the final NOTIFY reported 2xx
    FAILED = "failed"  # REFER refused, a failure in the NOTIFY, or no result in time
    UNCONFIRMED = "unconfirmed"  # the PBX took the call away without a final NOTIFY


class Detail(StrEnum):
    """The finer reason inside an outcome, where the product reports one apart."""

    RING_TIMEOUT = "ring_timeout"
    NO_RESPONSE = "no_response"
    AUTH_FAILED = "auth_failed"
    REFER_REFUSED = "refer_refused"
    TRANSFER_FAILED = "transfer_failed"
    TRANSFER_TIMEOUT = "transfer_timeout"
    #: Abandoned, hung up: the customer picked up and no operator became free within the
    #: campaign's abandon tolerance (the engine hung up, or the customer did first).
    NO_FREE_OPERATOR = "no_free_operator"
    #: Abandoned, sent to the fallback: as above, and the campaign's fallback (an
    #: announcement, a voicemail, an overflow queue at its PBX) took the customer by REFER.
    SENT_TO_FALLBACK = "sent_to_fallback"
    CUSTOMER_HUNG_UP = "customer_hung_up"
    #: The engine was gone (killed, paused past its lease, cut off) with the call open; the
    #: engine that took the tenant over closed the attempt.
    ENGINE_LOST = "engine_lost"
    #: The engine ended the call itself because it stopped: dialing switched off, its lease
    #: lost, or its host shutting down (docs/engine.md, "Stopping").
    ENGINE_STOPPED = "engine_stopped"


#: The details of an abandoned call: picked up, no operator got the customer. Both count
#: against the abandon rate cap (docs/pacing.md).
ABANDONED = (Detail.NO_FREE_OPERATOR, Detail.SENT_TO_FALLBACK)
